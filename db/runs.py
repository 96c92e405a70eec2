"""Queries and writes of training runs, their folds, predictions and attribution summaries.

Every statement the training, prediction, attribution and report jobs run lives here; the jobs
(:mod:`services.jobs`) own the transactions (``with session_scope(engine) as s``) and the science.
Writes are upserts on natural keys (``model_runs.run_key``, ``(run_id, fold)``,
``(run_id, cluster_id)``), so a redelivered task writes nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from db.errors import RunNotFoundError
from db.tables import Attribution, Cluster, ModelRun, ModelRunFold, Prediction, Product

__all__ = [
    "get_run",
    "get_fold",
    "upsert_run",
    "fold_statuses",
    "done_folds",
    "finish_fold",
    "upsert_predictions",
    "mock_predictions",
    "predicted_cluster_ids",
    "run_predictions",
    "catalogue_runs",
    "observed_image_clusters",
    "upsert_attributions",
    "merge_run_metrics",
    "weights_product",
    "touch_run",
    "cancel_run",
    "reopen_run",
    "stale_runs",
    "database_now",
    "fail_run",
]

_CHUNK = 1000


def get_run(session: Session, run_id: int) -> ModelRun:
    """Return the model run with that id, or raise :class:`RunNotFoundError`."""
    run = session.get(ModelRun, int(run_id))
    if run is None:
        raise RunNotFoundError(f"no model run with id {run_id}")
    return run


def get_fold(session: Session, run_id: int, fold: int) -> ModelRunFold:
    """Return fold ``fold`` of a run, or raise :class:`RunNotFoundError`."""
    row = session.scalar(
        select(ModelRunFold).where(ModelRunFold.run_id == run_id, ModelRunFold.fold == fold)
    )
    if row is None:
        raise RunNotFoundError(f"run {run_id} has no fold {fold}")
    return row


def upsert_run(session: Session, values: dict[str, Any], folds: Sequence[int]) -> int:
    """Create the run keyed by ``values['run_key']`` (or find it) and its pending folds; its id."""
    stmt = insert(ModelRun).values(**values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_model_runs_run_key", set_={"name": stmt.excluded.name}
    )
    run_id = int(session.scalar(stmt.returning(ModelRun.id)))
    if folds:
        session.execute(
            insert(ModelRunFold)
            .values([{"run_id": run_id, "fold": int(f), "status": "pending"} for f in folds])
            .on_conflict_do_nothing(constraint="uq_model_run_folds_run_id_fold")
        )
    return run_id


def fold_statuses(session: Session, run_id: int) -> dict[int, str]:
    """Fold -> status of a run."""
    rows = session.execute(
        select(ModelRunFold.fold, ModelRunFold.status).where(ModelRunFold.run_id == run_id)
    ).all()
    return {int(f): s for f, s in rows}


def done_folds(session: Session, run_id: int) -> list[int]:
    """Return the folds of a run that finished training, ascending."""
    return sorted(
        session.scalars(
            select(ModelRunFold.fold).where(
                ModelRunFold.run_id == run_id, ModelRunFold.status == "done"
            )
        ).all()
    )


def weights_product(session: Session, run_id: int, fold: int) -> tuple[ModelRunFold, Product]:
    """Return a trained fold and its weights product (RunNotFoundError when not trained)."""
    row = session.scalar(
        select(ModelRunFold).where(ModelRunFold.run_id == run_id, ModelRunFold.fold == fold)
    )
    if row is None or row.status != "done" or row.weights_product_id is None:
        raise RunNotFoundError(f"run {run_id} has no trained fold {fold}")
    return row, session.get(Product, row.weights_product_id)


def finish_fold(session: Session, run_id: int, fold: int, **values: Any) -> None:
    """Mark a fold done with its weights, preprocessing, metrics and split sizes."""
    session.execute(
        update(ModelRunFold)
        .where(ModelRunFold.run_id == run_id, ModelRunFold.fold == fold)
        .values(status="done", finished_at=dt.datetime.now(dt.UTC), **values)
    )


def upsert_predictions(session: Session, rows: list[dict[str, Any]]) -> None:
    """Upsert predictions keyed by ``(run_id, cluster_id)``."""
    for start in range(0, len(rows), _CHUNK):
        part = rows[start : start + _CHUNK]
        stmt = insert(Prediction).values(part)
        cols = set(part[0]) - {"run_id", "cluster_id"}
        stmt = stmt.on_conflict_do_update(
            constraint="uq_predictions_run_id_cluster_id",
            set_={c: stmt.excluded[c] for c in cols},
        )
        session.execute(stmt)


def mock_predictions(
    session: Session, run_id: int, catalogue_id: int | None = None
) -> dict[str, np.ndarray]:
    """Return a run's out-of-fold predictions of mock clusters with their truth, as arrays.

    Keys ``pred``, ``err``, ``true``, ``snapshot``; NaN where a value is missing (no uncertainty,
    no true mass); snapshot -1 where none. Only the cross-validated predictions count (``fold``
    set), and with ``catalogue_id`` only those of that catalogue: the fold-ensemble predictions
    of other clusters or of another mock are not the run's scatter.
    """
    stmt = (
        select(
            Prediction.log10_m500c_pred,
            Prediction.log10_m500c_pred_err,
            Cluster.log10_m500c,
            Cluster.snapshot,
        )
        .join(Cluster, Cluster.id == Prediction.cluster_id)
        .where(
            Prediction.run_id == run_id,
            Prediction.input_domain == "mock",
            Prediction.fold.is_not(None),
        )
    )
    if catalogue_id is not None:
        stmt = stmt.where(Cluster.catalogue_id == catalogue_id)
    rows = session.execute(stmt).all()
    return {
        "pred": np.array([r[0] for r in rows], float),
        "err": np.array([np.nan if r[1] is None else r[1] for r in rows], float),
        "true": np.array([np.nan if r[2] is None else r[2] for r in rows], float),
        "snapshot": np.array([-1 if r[3] is None else r[3] for r in rows], int),
    }


def predicted_cluster_ids(session: Session, run_id: int, catalogue_id: int) -> set[int]:
    """Ids of the catalogue's clusters that already have a prediction from the run."""
    return set(
        session.scalars(
            select(Prediction.cluster_id)
            .join(Cluster, Cluster.id == Prediction.cluster_id)
            .where(Prediction.run_id == run_id, Cluster.catalogue_id == catalogue_id)
        ).all()
    )


def run_predictions(session: Session, run_id: int) -> dict[int, float]:
    """Cluster id -> predicted log10 M500c of a run's mock predictions."""
    return {
        int(cid): float(value)
        for cid, value in session.execute(
            select(Prediction.cluster_id, Prediction.log10_m500c_pred).where(
                Prediction.run_id == run_id, Prediction.input_domain == "mock"
            )
        )
    }


def catalogue_runs(
    session: Session,
    catalogue_id: int,
    run_ids: Sequence[int] | None,
    *,
    key: Callable[[ModelRun], Hashable] | None = None,
) -> list[ModelRun]:
    """Return the named runs, or the newest finished run of each kind on the catalogue.

    ``key(run)`` groups runs when "each kind" is finer than ``ModelRun.kind`` (e.g. a fold
    ensemble of single-band networks is not the newest single-band network); default the kind.
    """
    if run_ids:
        runs = [session.get(ModelRun, r) for r in run_ids]
        missing = [r for r, run in zip(run_ids, runs, strict=True) if run is None]
        if missing:
            raise RunNotFoundError(f"no model runs with ids {missing}")
        return runs  # type: ignore[return-value]
    newest: dict[Hashable, ModelRun] = {}
    for run in session.scalars(
        select(ModelRun)
        .where(ModelRun.catalogue_id == catalogue_id, ModelRun.status == "done")
        .order_by(ModelRun.id)
    ):
        newest[run.kind if key is None else key(run)] = run
    return list(newest.values())


def observed_image_clusters(session: Session, catalogue_id: int) -> list[tuple[Any, ...]]:
    """``(id, name, redshift, log10_m500c)`` of the catalogue's clusters with observed images."""
    return [
        tuple(r)
        for r in session.execute(
            select(Cluster.id, Cluster.name, Cluster.redshift, Cluster.log10_m500c)
            .join(Product, Product.cluster_id == Cluster.id)
            .where(Cluster.catalogue_id == catalogue_id, Product.kind == "xray_observed")
            .distinct()
            .order_by(Cluster.id)
        ).all()
    ]


def upsert_attributions(session: Session, rows: list[dict[str, Any]], chunk: int = 500) -> None:
    """Upsert attribution summaries keyed by ``(run_id, cluster_id, method)``."""
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        stmt = insert(Attribution).values(part)
        cols = set(part[0]) - {"run_id", "cluster_id", "method"}
        stmt = stmt.on_conflict_do_update(
            constraint="uq_attributions_run_id_cluster_id_method",
            set_={c: stmt.excluded[c] for c in cols},
        )
        session.execute(stmt)


def merge_run_metrics(session: Session, run_id: int, path: Sequence[str], value: Any) -> None:
    """Set ``model_runs.metrics[path[0]][path[1]]...`` to ``value``, keeping the other keys."""
    run = get_run(session, run_id)
    metrics = dict(run.metrics or {})
    node = metrics
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    run.metrics = metrics
    flag_modified(run, "metrics")


def touch_run(session: Session, run_id: int) -> None:
    """Record a heartbeat of the flow driving a run (database time)."""
    session.execute(update(ModelRun).where(ModelRun.id == run_id).values(heartbeat_at=func.now()))


def _set_unfinished_folds(session: Session, run_id: int, status: str) -> list[int]:
    """Set ``status`` on the run's folds that are not ``done``; return those folds, ascending."""
    return sorted(
        session.scalars(
            update(ModelRunFold)
            .where(ModelRunFold.run_id == run_id, ModelRunFold.status != "done")
            .values(status=status)
            .returning(ModelRunFold.fold)
        ).all()
    )


def cancel_run(session: Session, run_id: int, reason: str) -> list[int]:
    """Mark a run and its unfinished folds ``cancelled``; return those folds.

    A run already ``done`` keeps its state (nothing is left to cancel). ``reason`` goes to
    ``model_runs.error``.
    """
    run = get_run(session, run_id)
    folds = _set_unfinished_folds(session, run_id, "cancelled")
    if run.status != "done":
        run.status = "cancelled"
        run.error = reason
        run.finished_at = dt.datetime.now(dt.UTC)
    return folds


def reopen_run(session: Session, run_id: int) -> list[int]:
    """Make a run's unfinished folds ``pending`` again (to resume it); return them, ascending.

    Folds already ``done`` are kept. A run that is not ``done`` goes back to ``pending`` with
    its error cleared.
    """
    run = get_run(session, run_id)
    folds = _set_unfinished_folds(session, run_id, "pending")
    if run.status != "done" or folds:
        run.status, run.error, run.finished_at = "pending", None, None
    return folds


def stale_runs(session: Session, older_than_s: float) -> list[dict[str, Any]]:
    """Return the runs still ``pending``/``running`` whose flow has not heartbeated for ``older_than_s``.

    A run that never heartbeated counts from its creation. Each row: ``run_id``, ``name``,
    ``kind``, ``status``, ``heartbeat_at``, ``folds_done``, ``folds_total``.
    """
    done = func.count(ModelRunFold.id).filter(ModelRunFold.status == "done")
    last = func.coalesce(ModelRun.heartbeat_at, ModelRun.created_at)
    rows = session.execute(
        select(
            ModelRun.id,
            ModelRun.name,
            ModelRun.kind,
            ModelRun.status,
            last,
            done,
            func.count(ModelRunFold.id),
        )
        .outerjoin(ModelRunFold, ModelRunFold.run_id == ModelRun.id)
        .where(
            ModelRun.status.in_(("pending", "running")),
            last < func.now() - text("make_interval(secs => :age)").bindparams(age=older_than_s),
        )
        .group_by(ModelRun.id)
        .order_by(ModelRun.id)
    ).all()
    keys = ("run_id", "name", "kind", "status", "heartbeat_at", "folds_done", "folds_total")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def database_now(session: Session) -> dt.datetime:
    """Return the database server's current time (heartbeats are stamped with it)."""
    return session.scalar(select(func.now()))


def fail_run(session: Session, run_id: int, error: str) -> None:
    """Mark a run ``failed`` with ``error`` (a run already ``done`` or ``cancelled`` keeps it)."""
    session.execute(
        update(ModelRun)
        .where(ModelRun.id == run_id, ModelRun.status.not_in(("done", "cancelled")))
        .values(status="failed", error=error, finished_at=func.now())
    )
