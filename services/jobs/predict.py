"""Prediction jobs: a trained run applied to clusters outside its training folds.

* Mock clusters of the training catalogue already have out-of-fold predictions from training;
  :func:`predict_job` leaves them alone.
* Any other cluster (another mock catalogue, or an observed cluster) gets the mean over the
  run's fold models (and ensemble members) with their spread as the uncertainty, stored with
  ``fold = NULL``. Observed inputs are built by :func:`services.jobs.ingest_observed.observed_model_input`,
  stored with ``input_domain = 'observed'`` and the instrument, and every result carries the
  caveats: a model trained on eROSITA-like mocks applied to another instrument is out of its
  training domain. An image from another instrument is corrected by default for the
  effective-area and band difference (:func:`services.jobs.ingest_observed.area_correction`);
  the row keeps the factor (``count_rate_scale``: corrected over uncorrected counts) and the
  prediction without it (``log10_m500c_pred_uncorrected``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from db import catalogues, results, runs
from db.errors import RunNotFoundError
from db.session import session_scope
from db.tables import ModelRun
from models import ClusterArrays, RunConfig, predict
from models.crossval import ensure_kde
from services.database import ready_engine
from services.jobs.data import load_catalogue_data
from services.jobs.ingest_observed import observed_model_input
from services.jobs.training import load_fold_model
from services.settings import Settings, get_settings

__all__ = ["PredictionReport", "predict_job", "run_models"]

log = logging.getLogger(__name__)


@dataclass
class PredictionReport:
    """What a prediction job did, cluster by cluster."""

    run_id: int
    catalogue: str
    n_predicted: int = 0
    n_skipped: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-safe)."""
        return {
            "run_id": self.run_id,
            "catalogue": self.catalogue,
            "n_predicted": self.n_predicted,
            "n_skipped": self.n_skipped,
            "rows": self.rows,
            "caveats": self.caveats,
        }


def run_models(run_id: int, settings: Settings) -> tuple[ModelRun, dict[int, tuple[list, Any]]]:
    """Return the run and, per trained fold, ``([ModelState per member], Preprocessing)``."""
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        run = runs.get_run(session, run_id)
        folds = runs.done_folds(session, run_id)
        session.expunge(run)
    if not folds:
        raise RunNotFoundError(f"run {run_id} has no trained fold: train it first")
    return run, {f: load_fold_model(run_id, f, settings=settings) for f in sorted(folds)}


def _ensemble_predict(
    models: dict[int, tuple[list, Any]],
    arrays: Any,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over every fold model and member (dex).

    ``progress(done, total)`` is called after each model (fold member) has predicted.
    """
    pairs = [(state, pre) for states, pre in models.values() for state in states]
    preds = []
    for k, (state, pre) in enumerate(pairs):
        preds.append(predict(state, pre, arrays))
        if progress is not None:
            progress(k + 1, len(pairs))
    stack = np.stack(preds)
    return stack.mean(axis=0), stack.std(axis=0, ddof=1) if len(preds) > 1 else np.full(
        stack.shape[1], np.nan
    )


def predict_job(
    run_id: int,
    catalogue_id: int,
    *,
    settings: Settings | None = None,
    training_exposure_s: float = 2000.0,
    progress: Callable[[int, int], None] | None = None,
) -> PredictionReport:
    """Predict every cluster of a catalogue that has no prediction from this run yet.

    ``progress(done, total)`` reports models applied (simulations) or clusters (observed).
    """
    settings = settings or get_settings()
    engine = ready_engine(settings)
    run, models = run_models(run_id, settings)
    with session_scope(engine) as session:
        cat = catalogues.get_catalogue(session, catalogue_id)
        have = runs.predicted_cluster_ids(session, run_id, catalogue_id)
        kind, name = cat.kind, cat.name
    report = PredictionReport(run_id, name, n_skipped=len(have))
    if kind == "simulation":
        _predict_simulated(run, models, catalogue_id, have, report, settings, progress)
    else:
        _predict_observed(
            run, models, catalogue_id, report, settings, training_exposure_s, progress
        )
    return report


def _predict_simulated(
    run: ModelRun,
    models: dict[int, tuple[list, Any]],
    catalogue_id: int,
    have: set[int],
    report: PredictionReport,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    engine = ready_engine(settings)
    data = load_catalogue_data(engine, catalogue_id, settings.data_dir)
    todo = np.array([i for i, c in enumerate(data.cluster_ids) if int(c) not in have], dtype=int)
    if todo.size == 0:
        return
    arrays = data.arrays.subset(todo)
    cfg = RunConfig.model_validate(run.config)
    if cfg.build_network().needs_kde:
        arrays = ensure_kde(replace(arrays, kde_cubes=None), cfg.data.kde)
    mean, spread = _ensemble_predict(models, arrays, progress)
    rows = [
        {
            "run_id": run.id,
            "cluster_id": int(data.cluster_ids[i]),
            "fold": None,
            "log10_m500c_pred": float(m),
            "log10_m500c_pred_err": None if not np.isfinite(s) else float(s),
            "input_domain": "mock",
            "instrument": "eROSITA (mock)",
        }
        for i, m, s in zip(todo, mean, spread, strict=True)
    ]
    with session_scope(engine) as session:
        runs.upsert_predictions(session, rows)
        # a big run's binned scatter answers from its index (the write dropped any old one)
        results.build_index(session, run.id)
    report.n_predicted = len(rows)


def _predict_observed(
    run: ModelRun,
    models: dict[int, tuple[list, Any]],
    catalogue_id: int,
    report: PredictionReport,
    settings: Settings,
    training_exposure_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> None:

    engine = ready_engine(settings)
    with session_scope(engine) as session:
        clusters = runs.observed_image_clusters(session, catalogue_id)
    rows = []
    for k, (cid, name, z, catalogue_mass) in enumerate(clusters):
        if progress is not None:
            progress(k, len(clusters))
        try:
            image, meta = observed_model_input(
                cid,
                run.kind,
                training_exposure_s=training_exposure_s,
                engine=engine,
                data_dir=settings.data_dir,
            )
        except Exception as exc:  # noqa: BLE001 - reported per cluster, the rest go on
            if type(exc).__module__.split(".")[0] not in {"survey", "db", "models"}:
                raise
            report.rows.append({"cluster": name, "status": "skipped", "reason": str(exc)})
            report.n_skipped += 1
            continue
        arrays = ClusterArrays(images=image[None].astype(np.float32), redshift=np.array([z]))
        mean, spread = _ensemble_predict(models, arrays)
        correction = meta.get("area_correction", {})
        scale, uncorrected = None, None  # no correction applied (the image set names no response)
        if correction.get("source") == "training instrument":
            scale, uncorrected = 1.0, float(mean[0])
        elif correction.get("source") in ("response", "given"):
            raw, _ = observed_model_input(
                cid,
                run.kind,
                training_exposure_s=training_exposure_s,
                count_rate_scale=1.0,
                engine=engine,
                data_dir=settings.data_dir,
            )
            scale = float(image.sum() / raw.sum()) if raw.sum() > 0 else None
            if scale is not None and abs(scale - 1.0) > 1e-9:
                raw_arrays = ClusterArrays(
                    images=raw[None].astype(np.float32), redshift=np.array([z])
                )
                uncorrected = float(_ensemble_predict(models, raw_arrays)[0][0])
            else:
                uncorrected = float(mean[0])
        instrument = str(meta.get("instrument", ""))
        rows.append(
            {
                "run_id": run.id,
                "cluster_id": cid,
                "fold": None,
                "log10_m500c_pred": float(mean[0]),
                "log10_m500c_pred_err": None if not np.isfinite(spread[0]) else float(spread[0]),
                "input_domain": "observed",
                "instrument": instrument,
                "count_rate_scale": scale,
                "log10_m500c_pred_uncorrected": uncorrected,
            }
        )
        report.rows.append(
            {
                "cluster": name,
                "status": "predicted",
                "instrument": instrument,
                "log10_m500c_pred": float(mean[0]),
                "fold_spread_dex": float(spread[0]),
                "log10_m500c_pred_uncorrected": uncorrected,
                "count_rate_scale": scale,
                "area_correction": correction,
                "log10_m500c_catalogue": catalogue_mass,
                "caveats": list(meta.get("caveats", [])),
            }
        )
        for caveat in meta.get("caveats", []):
            if caveat not in report.caveats:
                report.caveats.append(caveat)
    with session_scope(engine) as session:
        runs.upsert_predictions(session, rows)
    report.n_predicted = len(rows)
    if progress is not None:
        progress(len(clusters), len(clusters))
