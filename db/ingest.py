"""Bulk, idempotent writes of catalogues, clusters and observables (upserts on natural keys).

The one home of these upserts: simulation ingest (:mod:`services.jobs.simulation`) and survey
ingest (:mod:`db.survey`, :mod:`db.survey_products`) both write through them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.errors import CatalogueKindError
from db.tables import Catalogue, Cluster, Observable

__all__ = ["upsert_catalogue", "upsert_clusters", "upsert_observables", "chunks"]

CHUNK = 1000


def chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """Yield consecutive slices of ``rows`` of at most ``size`` items."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def upsert_catalogue(session: Session, *, name: str, kind: str, **fields: Any) -> int:
    """Insert or update the catalogue called ``name``; return its id.

    A catalogue's kind never changes: a simulation can never take over a survey catalogue's
    name, nor the other way round.

    Raises
    ------
    CatalogueKindError
        A catalogue of that name exists with another kind.
    """
    existing = session.scalar(select(Catalogue.kind).where(Catalogue.name == name))
    if existing is not None and existing != kind:
        raise CatalogueKindError(
            f"catalogue {name!r} already exists as a {existing} catalogue; a {kind} catalogue "
            "cannot take its name: choose another name"
        )
    values = {"name": name, "kind": kind, **fields}
    stmt = insert(Catalogue).values(**values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_catalogues_name",
        set_={k: stmt.excluded[k] for k in values if k not in ("name", "kind")},
    )
    return session.scalar(stmt.returning(Catalogue.id))


def upsert_clusters(
    session: Session, catalogue_id: int, rows: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Upsert clusters keyed by ``(catalogue_id, external_id)``; return external_id -> id.

    Each row holds :class:`db.tables.Cluster` column values (without ``catalogue_id``).
    """
    ids: dict[str, int] = {}
    for part in chunks(rows):
        values = [{**row, "catalogue_id": catalogue_id} for row in part]
        columns = set().union(*(v.keys() for v in values)) - {"catalogue_id", "external_id"}
        stmt = insert(Cluster).values(values)
        stmt = stmt.on_conflict_do_update(
            constraint="uq_clusters_catalogue_id_external_id",
            set_={c: stmt.excluded[c] for c in columns},
        )
        for ext, cid in session.execute(stmt.returning(Cluster.external_id, Cluster.id)):
            ids[ext] = cid
    return ids


def upsert_observables(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Upsert observables keyed by ``(cluster_id, name)``; return the number of rows written.

    Each row holds :class:`db.tables.Observable` column values (``cluster_id``, ``name``,
    ``value``, optional ``unit``, ``error``, ``note``).
    """
    n = 0
    for part in chunks(rows):
        stmt = insert(Observable).values(list(part))
        columns = set().union(*(r.keys() for r in part)) - {"cluster_id", "name"}
        stmt = stmt.on_conflict_do_update(
            constraint="uq_observables_cluster_id_name", set_={c: stmt.excluded[c] for c in columns}
        )
        session.execute(stmt)
        n += len(part)
    return n


def catalogue_id_by_name(session: Session, name: str) -> int | None:
    """Return the id of the catalogue called ``name`` (``None`` if absent)."""
    return session.scalar(select(Catalogue.id).where(Catalogue.name == name))
