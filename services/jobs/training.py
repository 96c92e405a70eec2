"""Training runs in the database: create a run, train one fold per task, finalise the metrics.

* :func:`create_run` upserts the ``model_runs`` row keyed by ``run_key`` (sha256 of the
  canonical configuration and the catalogue name) and one ``model_run_folds`` row per fold.
  Creating the same run twice returns the same id.
* :func:`train_fold_job` trains one fold (all its ensemble members) and, in ONE transaction,
  stores the weights (a content-addressed ``weights`` product), the fold's preprocessing
  statistics and metrics, and the out-of-fold predictions (upserts on ``(run_id, cluster_id)``).
  A fold already ``done`` is not retrained; a fold whose worker died mid-way (status stuck at
  ``running``) is retrained and its writes overwrite nothing twice.
* :func:`finalize_run` computes the run's metrics from the stored predictions once every fold
  is done (scatter, bias and bootstrap intervals; calibration when sigmas exist).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Callable
from typing import Any

import torch

from db import catalogues, products, runs, stores
from db.errors import RunNotFoundError
from db.results import build_index as build_scatter_index
from db.session import session_scope
from models import ModelState, Preprocessing, RunConfig, train_fold
from models.crossval import ensure_kde
from models.folds import make_folds, octant_folds, snapshot_folds
from models.metrics import mass_metrics, residual_summary
from models.runio import provenance
from models.training import TrainProgress
from models.uncertainty import combine_ensemble
from services.database import ready_engine
from services.jobs.data import load_catalogue_data
from services.paths import explain_missing_products
from services.progress import TaskCancelledError
from services.settings import Settings, get_settings

__all__ = [
    "create_run",
    "train_fold_job",
    "finalize_run",
    "run_folds",
    "load_fold_model",
    "progress_meta",
    "run_cancelled",
    "touch_run",
    "cancel_run",
    "reopen_run",
    "stale_runs",
    "RunBusyError",
    "fail_run",
]

log = logging.getLogger(__name__)

_SCHEME_DB = {"octants": "octant", "snapshot": "snapshot"}


def _run_key(config_key: str, catalogue_name: str) -> str:
    return hashlib.sha256(f"{config_key}:{catalogue_name}".encode()).hexdigest()


def _device(settings: Settings, config: Any) -> str:
    if settings.device != "auto":
        return settings.device
    return config.training.device


def create_run(
    catalogue_id: int,
    config: dict[str, Any],
    *,
    name: str | None = None,
    settings: Settings | None = None,
) -> tuple[int, list[int]]:
    """Create (or find) the run of ``config`` on a catalogue; return its id and its folds.

    ``config`` is a :class:`models.RunConfig` mapping (paper defaults filled in for the kind).
    A run of the same configuration that was cancelled or failed is reopened: its finished
    folds are kept, the others are pending again.
    """
    settings = settings or get_settings()
    cfg = RunConfig.from_config(None, **config)
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        cat = catalogues.get_catalogue(session, catalogue_id)
        arr = catalogues.cluster_positions(session, catalogue_id)
        if not len(arr):
            raise RunNotFoundError(f"catalogue {cat.name!r} has no clusters to train on")
        if cfg.cv.scheme == "octants":
            box = cat.box_size_mpc_h or cfg.cv.box_size
            folds = octant_folds(arr[:, :3], box)
        else:
            folds = snapshot_folds(arr[:, 3].astype(int))
        present = sorted(set(int(f) for f in folds))
        wanted = present if cfg.cv.folds is None else [f for f in cfg.cv.folds if f in present]
        prov = provenance(cfg)
        values = dict(
            run_key=_run_key(cfg.key(), cat.name),
            name=name or cfg.name or f"{cfg.model.kind}-{cat.name}",
            kind=cfg.model.kind,
            catalogue_id=catalogue_id,
            config=cfg.model_dump(mode="json"),
            seed=cfg.training.seed,
            git_commit=prov.get("git_commit"),
            package_versions=prov.get("versions", {}),
            fold_scheme=_SCHEME_DB[cfg.cv.scheme],
            status="pending",
        )
        run_id = runs.upsert_run(session, values, wanted)
        if runs.get_run(session, run_id).status in ("cancelled", "failed"):
            runs.reopen_run(session, run_id)  # asked for again: its unfinished folds go on
    return run_id, wanted


def run_folds(run_id: int, *, settings: Settings | None = None) -> dict[int, str]:
    """Fold -> status of a run."""
    engine = ready_engine(settings or get_settings())
    with session_scope(engine) as session:
        return runs.fold_statuses(session, run_id)


def load_fold_model(
    run_id: int, fold: int, *, settings: Settings | None = None
) -> tuple[list[Any], Any]:
    """Return ``([ModelState per ensemble member], Preprocessing)`` of a trained fold."""
    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        row, prod = runs.weights_product(session, run_id, fold)
        what = f"weights of run {run_id} fold {fold}"
        with explain_missing_products(engine, settings.data_dir):
            path = products.resolve(settings.data_dir, prod, verify=True, what=what)
        pre = Preprocessing.from_dict(row.preprocessing)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    states = [blob["state_dict"], *blob.get("members", [])]
    return [ModelState(network=blob["network"], state_dict=sd) for sd in states], pre


def train_fold_job(
    run_id: int,
    fold: int,
    *,
    settings: Settings | None = None,
    progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Train fold ``fold`` of run ``run_id`` and store weights, metrics and predictions."""
    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        run = runs.get_run(session, run_id)
        fold_row = runs.get_fold(session, run_id, fold)
        if fold_row.status == "done":
            log.info("run %s fold %s already done: nothing to do", run_id, fold)
            return {"run_id": run_id, "fold": fold, "status": "done", **fold_row.metrics}
        if run.status == "cancelled":
            raise TaskCancelledError(
                f"run {run_id} was cancelled: fold {fold} not trained "
                f"(resume it with `clustermass fit --resume {run_id}`)"
            )
        fold_row.status = "running"
        run.status = "running"
        catalogue_id, config = run.catalogue_id, run.config
    cfg = RunConfig.model_validate(config)
    data = load_catalogue_data(engine, catalogue_id, settings.data_dir)
    arrays = data.arrays
    if cfg.build_network().needs_kde:
        arrays = ensure_kde(arrays, cfg.data.kde)
    folds = make_folds(arrays, cfg.cv.scheme, data.box_size_mpc_h or cfg.cv.box_size)
    device = _device(settings, cfg)
    results = [
        train_fold(arrays, cfg, fold, folds=folds, member=m, progress=progress, device=device)
        for m in range(cfg.ensemble)
    ]
    first = results[0]
    pred, sigma = combine_ensemble(
        [r.test_prediction for r in results], [r.test_sigma for r in results]
    )
    test = first.split.test
    truth = arrays.log10_m500c[test]
    summary = residual_summary(pred, truth)
    metrics = {
        "n_test": summary["n"],
        "sigma_lnM": summary["sigma_lnM"],
        "bias_dex": summary["bias_dex"],
        "seconds": float(sum(r.seconds for r in results)),
        "device": first.device,
        "precision": first.precision,
        "members": [r.history for r in results],
    }
    weights = products.store_bytes(
        settings.data_dir,
        _state_bytes_members([r.model_state for r in results]),
        suffix=".pt",
        fmt="pt",
    )
    with session_scope(engine) as session:
        stores.record_store(session, settings.data_dir)
        wid = products.upsert_product(
            session,
            stored=weights,
            kind="weights",
            shape=[len(results)],
            dtype="torch.state_dict",
            meta={"run_id": run_id, "fold": fold, "network": first.model_state.network},
        )
        rows = [
            {
                "run_id": run_id,
                "cluster_id": int(data.cluster_ids[i]),
                "fold": fold,
                "log10_m500c_pred": float(p),
                "log10_m500c_pred_err": None if sigma is None else float(sigma[k]),
                "input_domain": "mock",
                "instrument": "eROSITA (mock)",
            }
            for k, (i, p) in enumerate(zip(test, pred, strict=True))
        ]
        runs.upsert_predictions(session, rows)
        runs.finish_fold(
            session,
            run_id,
            fold,
            weights_product_id=wid,
            preprocessing=first.preprocessing.to_dict(),
            metrics=metrics,
            n_train=int(first.split.train.size),
            n_val=int(first.split.val.size),
            n_test=int(test.size),
        )
    return {"run_id": run_id, "fold": fold, "status": "done", **metrics}


def _state_bytes_members(states: list[Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(
        {
            "network": states[0].network,
            "state_dict": states[0].state_dict,
            "members": [s.state_dict for s in states[1:]],
        },
        buf,
    )
    return buf.getvalue()


def finalize_run(
    run_id: int, *, n_boot: int = 1000, seed: int = 0, settings: Settings | None = None
) -> dict[str, Any]:
    """Compute a run's metrics from its stored predictions; mark it done when all folds are."""
    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        run = runs.get_run(session, run_id)
        statuses = runs.fold_statuses(session, run_id)
        p = runs.mock_predictions(session, run_id, run.catalogue_id)
        metrics: dict[str, Any] = {"folds": statuses}
        metrics |= mass_metrics(
            p["pred"], p["true"], p["snapshot"], p["err"], n_boot=n_boot, seed=seed
        )
        done = bool(statuses) and all(s == "done" for s in statuses.values())
        run.metrics = metrics
        run.status = "done" if done else run.status
        if done:
            run.finished_at = dt.datetime.now(dt.UTC)
            build_scatter_index(session, run_id)  # big runs: fast binned scatter (docs/sql.md)
    return {"run_id": run_id, "status": "done" if done else "running", **metrics}


def progress_meta(p: TrainProgress) -> dict[str, Any]:
    """Turn a training progress report into plain JSON (``services.progress``); epochs from 1.

    ``final`` marks the end-of-epoch report (it carries ``val_loss``).
    """
    return {
        "kind": "train",
        "fold": p.fold,
        "member": p.member,
        "epoch": p.epoch + 1,
        "epochs": p.max_epochs,
        "step": p.step,
        "steps": p.steps_per_epoch,
        "loss": float(p.loss),
        "val_loss": None if p.val_loss is None else float(p.val_loss),
        "final": p.val_loss is not None,
    }


def run_cancelled(run_id: int, *, settings: Settings | None = None) -> bool:
    """Whether run ``run_id`` has been cancelled (a running fold then stops at its next step)."""
    engine = ready_engine(settings or get_settings())
    with session_scope(engine) as session:
        return runs.get_run(session, run_id).status == "cancelled"


def touch_run(run_id: int, *, settings: Settings | None = None) -> None:
    """Heartbeat of the flow driving run ``run_id`` (``model_runs.heartbeat_at``)."""
    engine = ready_engine(settings or get_settings())
    with session_scope(engine) as session:
        runs.touch_run(session, run_id)


def cancel_run(run_id: int, reason: str, *, settings: Settings | None = None) -> list[int]:
    """Mark run ``run_id`` and its unfinished folds ``cancelled``; return those folds.

    Its running folds see it at their next heartbeat and stop (``TaskReporter.should_stop``);
    a redelivered fold task of a cancelled run trains nothing.
    """
    engine = ready_engine(settings or get_settings())
    with session_scope(engine) as session:
        return runs.cancel_run(session, run_id, reason)


def fail_run(run_id: int, error: str, *, settings: Settings | None = None) -> None:
    """Mark run ``run_id`` ``failed`` with ``error`` (resumable: ``clustermass fit --resume``)."""
    engine = ready_engine(settings or get_settings())
    with session_scope(engine) as session:
        runs.fail_run(session, run_id, error)


class RunBusyError(RuntimeError):
    """A run is still driven by a live flow (its heartbeat is fresh): it cannot be resumed."""


def reopen_run(run_id: int, *, settings: Settings | None = None) -> dict[str, Any]:
    """Put a run's unfinished folds back to ``pending`` (done folds are kept) to resume it.

    Returns ``{"run_id", "kind", "folds"}`` (the folds left to train). Refuses
    (:class:`RunBusyError`) a run still ``pending``/``running`` whose flow heartbeated less than
    ``CLUSTERMASS_RUN_STALE_S`` ago: a live flow drives it.
    """
    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        run = runs.get_run(session, run_id)
        if run.status in ("pending", "running") and run.heartbeat_at is not None:
            age = (runs.database_now(session) - run.heartbeat_at).total_seconds()
            if age < settings.run_stale_s:
                raise RunBusyError(
                    f"run {run_id} is {run.status}: its flow heartbeated {age:.0f} s ago "
                    f"(< CLUSTERMASS_RUN_STALE_S = {settings.run_stale_s:g} s); stop that flow "
                    "(Ctrl-C, or cancel it in the Prefect UI) or wait until it is stale"
                )
        kind = run.kind
        folds = runs.reopen_run(session, run_id)
    return {"run_id": run_id, "kind": kind, "folds": folds}


def stale_runs(*, settings: Settings | None = None) -> list[dict[str, Any]]:
    """List the runs left ``pending``/``running`` by a dead flow (no heartbeat for ``run_stale_s``)."""
    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        return runs.stale_runs(session, settings.run_stale_s)
