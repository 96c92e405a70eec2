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

import numpy as np
import torch
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from db import products
from db.errors import RunNotFoundError
from db.session import session_scope
from db.tables import Catalogue, Cluster, ModelRun, ModelRunFold, Prediction, Product
from services.database import ready_engine
from services.jobs.data import load_catalogue_data
from services.settings import Settings, get_settings

__all__ = ["create_run", "train_fold_job", "finalize_run", "run_folds", "load_fold_model"]

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
    """
    from models import RunConfig
    from models.cv import octant_folds, snapshot_folds
    from models.runio import provenance

    settings = settings or get_settings()
    cfg = RunConfig.from_config(None, **config)
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        cat = session.get(Catalogue, catalogue_id)
        if cat is None:
            raise RunNotFoundError(f"no catalogue with id {catalogue_id}")
        rows = session.execute(
            select(Cluster.pos_x_mpc_h, Cluster.pos_y_mpc_h, Cluster.pos_z_mpc_h, Cluster.snapshot)
            .where(Cluster.catalogue_id == catalogue_id)
            .order_by(Cluster.id)
        ).all()
        if not rows:
            raise RunNotFoundError(f"catalogue {cat.name!r} has no clusters to train on")
        arr = np.array([[r[0], r[1], r[2], r[3] if r[3] is not None else -1] for r in rows], float)
        if cfg.cv.scheme == "octants":
            box = cat.box_size_mpc_h or cfg.cv.box_size
            folds = octant_folds(arr[:, :3], box)
        else:
            folds = snapshot_folds(arr[:, 3].astype(int))
        present = sorted(set(int(f) for f in folds))
        wanted = present if cfg.cv.folds is None else [f for f in cfg.cv.folds if f in present]
        prov = provenance(cfg)
        stmt = insert(ModelRun).values(
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
        stmt = stmt.on_conflict_do_update(
            constraint="uq_model_runs_run_key", set_={"name": stmt.excluded.name}
        )
        run_id = session.scalar(stmt.returning(ModelRun.id))
        session.execute(
            insert(ModelRunFold)
            .values([{"run_id": run_id, "fold": f, "status": "pending"} for f in wanted])
            .on_conflict_do_nothing(constraint="uq_model_run_folds_run_id_fold")
        )
    return run_id, wanted


def run_folds(run_id: int, *, settings: Settings | None = None) -> dict[int, str]:
    """Fold -> status of a run."""
    engine = ready_engine(settings or get_settings())
    with session_scope(engine) as session:
        rows = session.execute(
            select(ModelRunFold.fold, ModelRunFold.status).where(ModelRunFold.run_id == run_id)
        ).all()
    return {f: s for f, s in rows}


def load_fold_model(
    run_id: int, fold: int, *, settings: Settings | None = None
) -> tuple[list[Any], Any]:
    """Return ``([ModelState per ensemble member], Preprocessing)`` of a trained fold."""
    from models import ModelState, Preprocessing

    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        row = session.scalar(
            select(ModelRunFold).where(ModelRunFold.run_id == run_id, ModelRunFold.fold == fold)
        )
        if row is None or row.status != "done" or row.weights_product_id is None:
            raise RunNotFoundError(f"run {run_id} has no trained fold {fold}")
        prod = session.get(Product, row.weights_product_id)
        path = products.resolve(settings.data_dir, prod, verify=True)
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
    from models import RunConfig, train_fold
    from models.crossval import ensure_kde
    from models.cv import make_folds
    from models.uncertainty import combine_ensemble

    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        run = session.get(ModelRun, run_id)
        if run is None:
            raise RunNotFoundError(f"no model run with id {run_id}")
        fold_row = session.scalar(
            select(ModelRunFold).where(ModelRunFold.run_id == run_id, ModelRunFold.fold == fold)
        )
        if fold_row is None:
            raise RunNotFoundError(f"run {run_id} has no fold {fold}")
        if fold_row.status == "done":
            log.info("run %s fold %s already done: nothing to do", run_id, fold)
            return {"run_id": run_id, "fold": fold, "status": "done", **fold_row.metrics}
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
    resid = pred - truth
    metrics = {
        "n_test": int(test.size),
        "sigma_lnm": float(np.std(resid) * np.log(10)),
        "bias_dex": float(np.mean(resid)),
        "seconds": float(sum(r.seconds for r in results)),
        "device": first.device,
        "members": [r.history for r in results],
    }
    weights = products.store_bytes(
        settings.data_dir,
        _state_bytes_members([r.model_state for r in results]),
        suffix=".pt",
        fmt="pt",
    )
    with session_scope(engine) as session:
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
        upsert_predictions(session, rows)
        session.execute(
            update(ModelRunFold)
            .where(ModelRunFold.run_id == run_id, ModelRunFold.fold == fold)
            .values(
                status="done",
                weights_product_id=wid,
                preprocessing=first.preprocessing.to_dict(),
                metrics=metrics,
                n_train=int(first.split.train.size),
                n_val=int(first.split.val.size),
                n_test=int(test.size),
                finished_at=dt.datetime.now(dt.UTC),
            )
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


def upsert_predictions(session: Any, rows: list[dict[str, Any]]) -> None:
    """Upsert predictions keyed by ``(run_id, cluster_id)``."""
    for start in range(0, len(rows), 1000):
        part = rows[start : start + 1000]
        if not part:
            continue
        stmt = insert(Prediction).values(part)
        cols = set(part[0]) - {"run_id", "cluster_id"}
        stmt = stmt.on_conflict_do_update(
            constraint="uq_predictions_run_id_cluster_id",
            set_={c: stmt.excluded[c] for c in cols},
        )
        session.execute(stmt)


def finalize_run(
    run_id: int, *, n_boot: int = 1000, seed: int = 0, settings: Settings | None = None
) -> dict[str, Any]:
    """Compute a run's metrics from its stored predictions; mark it done when all folds are."""
    from models.baselines import dl_estimates
    from models.uncertainty import calibration_report

    settings = settings or get_settings()
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        run = session.get(ModelRun, run_id)
        if run is None:
            raise RunNotFoundError(f"no model run with id {run_id}")
        statuses = dict(
            session.execute(
                select(ModelRunFold.fold, ModelRunFold.status).where(ModelRunFold.run_id == run_id)
            ).all()
        )
        rows = session.execute(
            select(
                Prediction.log10_m500c_pred,
                Prediction.log10_m500c_pred_err,
                Cluster.log10_m500c,
                Cluster.snapshot,
            )
            .join(Cluster, Cluster.id == Prediction.cluster_id)
            .where(Prediction.run_id == run_id, Prediction.input_domain == "mock")
        ).all()
        pred = np.array([r[0] for r in rows], float)
        err = np.array([np.nan if r[1] is None else r[1] for r in rows], float)
        true = np.array([np.nan if r[2] is None else r[2] for r in rows], float)
        snap = np.array([-1 if r[3] is None else r[3] for r in rows], int)
        metrics: dict[str, Any] = {"n": int(len(rows)), "folds": statuses}
        if len(rows) >= 2:
            scatter, bias = dl_estimates(pred, true, snap, n_boot=n_boot, seed=seed)
            metrics.update(scatter.as_dict("sigma_lnm"))
            metrics.update(bias.as_dict("bias_dex"))
            metrics["bootstrap"] = {"n_boot": n_boot, "seed": seed, "level": scatter.level}
            if np.isfinite(err).any():
                metrics["calibration"] = calibration_report(pred, err, true)
        done = bool(statuses) and all(s == "done" for s in statuses.values())
        run.metrics = metrics
        run.status = "done" if done else run.status
        if done:
            run.finished_at = dt.datetime.now(dt.UTC)
    return {"run_id": run_id, "status": "done" if done else "running", **metrics}
