"""What the database holds, for an operator: catalogues with their sizes, runs with their states.

Read-only queries behind ``clustermass status`` (``services.ops_status``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.tables import Catalogue, Cluster, ModelRun, ModelRunFold

__all__ = ["CatalogueRow", "RunRow", "catalogue_rows", "run_rows"]


@dataclass(frozen=True)
class CatalogueRow:
    """One catalogue: its id, name, kind (``simulation`` or ``survey``) and cluster count."""

    id: int
    name: str
    kind: str
    n_clusters: int


@dataclass(frozen=True)
class RunRow:
    """One training run: its state and how many of its folds are done."""

    id: int
    kind: str
    catalogue: str | None
    status: str
    folds_done: int
    folds_total: int
    created_at: dt.datetime
    finished_at: dt.datetime | None


def catalogue_rows(session: Session) -> list[CatalogueRow]:
    """Every catalogue with its number of clusters, by id."""
    n = select(Cluster.catalogue_id, func.count().label("n")).group_by(Cluster.catalogue_id)
    n = n.subquery()
    rows = session.execute(
        select(Catalogue.id, Catalogue.name, Catalogue.kind, func.coalesce(n.c.n, 0))
        .outerjoin(n, n.c.catalogue_id == Catalogue.id)
        .order_by(Catalogue.id)
    )
    return [CatalogueRow(*row) for row in rows]


def run_rows(session: Session, limit: int = 20) -> list[RunRow]:
    """Return the newest ``limit`` training runs, newest first, with their fold counts."""
    folds = (
        select(
            ModelRunFold.run_id,
            func.count().label("total"),
            func.sum(case((ModelRunFold.status == "done", 1), else_=0)).label("done"),
        )
        .group_by(ModelRunFold.run_id)
        .subquery()
    )
    rows = session.execute(
        select(
            ModelRun.id,
            ModelRun.kind,
            Catalogue.name,
            ModelRun.status,
            func.coalesce(folds.c.done, 0),
            func.coalesce(folds.c.total, 0),
            ModelRun.created_at,
            ModelRun.finished_at,
        )
        .outerjoin(Catalogue, Catalogue.id == ModelRun.catalogue_id)
        .outerjoin(folds, folds.c.run_id == ModelRun.id)
        .order_by(ModelRun.id.desc())
        .limit(limit)
    )
    return [RunRow(*row) for row in rows]
