"""Bulk, idempotent writes of catalogues, clusters and observables (upserts on natural keys).

The one home of these upserts: simulation ingest (:mod:`services.jobs.simulation`) and survey
ingest (:mod:`db.survey`, :mod:`db.survey_products`) both write through them.

Bulk rows go through :func:`copy_upsert`: ``COPY`` into a temporary table, then one
``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` into the real table (its natural key decides:
a re-run updates the same rows, never adds any). Everything stays in the caller's transaction.
The writing role needs ``TEMPORARY`` on the database: the owner has it (revision 0003 revokes
it from ``PUBLIC`` only, so the read-only role cannot create temporary tables).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from db.errors import CatalogueKindError
from db.tables import Base, Catalogue

__all__ = [
    "upsert_catalogue",
    "upsert_clusters",
    "upsert_observables",
    "copy_upsert",
    "copy_observables",
]

_STAGE_IDS = itertools.count(1)
_BATCH = 5000  # COPY text lines sent per write
# COPY text format: these characters of a value are written as backslash escapes
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text_row(row: Sequence[Any]) -> str | None:
    """One COPY text line of ``row`` if every value is None, bool, int, float or str, else None.

    Floats use ``repr`` (the shortest string that reads back to the same double; ``nan`` and
    ``inf`` are accepted by PostgreSQL), so values round-trip exactly. Other types (JSON,
    arrays) go through the driver's ``write_row``.
    """
    out = []
    for v in row:
        if v is None:
            out.append("\\N")
        elif isinstance(v, str):
            out.append(v.translate(_ESCAPES))
        elif isinstance(v, bool | int | float) and not isinstance(v, np.generic):
            out.append(repr(v))
        else:
            return None
    return "\t".join(out) + "\n"


def copy_upsert(
    session: Session,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    key: Sequence[str],
    returning: Sequence[str] = (),
    new: bool = False,
) -> list[tuple[Any, ...]]:
    """Upsert ``rows`` into ``table`` through ``COPY``: stage, then one ``INSERT ... SELECT``.

    Parameters
    ----------
    session : Session
        The caller's session (psycopg 3 driver); its transaction holds everything.
    table : str
        A table of :mod:`db.tables` (checked: never a name from user input).
    columns : sequence of str
        The columns of ``rows``, in order; those not in ``key`` are updated on conflict.
    rows : iterable of sequences
        One tuple per row; ``dict`` values are stored as JSON, ``list`` values as arrays.
    key : sequence of str
        The natural key: the columns of the table's unique constraint. Rows must not repeat a
        key (PostgreSQL refuses to update one row twice in a statement).
    returning : sequence of str
        Columns to return for every row given (any order), each tuple followed by ``True``
        when this call inserted the row (``False``: it existed).
    new : bool
        The rows cannot exist yet (they hang on rows this transaction just inserted): a plain
        ``INSERT ... SELECT``, without the conflict checks. A wrong ``True`` is not silent: the
        unique constraint refuses the duplicate.

    Returns
    -------
    list of tuple
        ``(*returning, inserted)`` of every row (empty without ``returning``).

    Notes
    -----
    A conflicting row is rewritten only when a value differs (``WHERE ... IS DISTINCT FROM``):
    an idempotent re-run writes no new row versions.
    """
    target = Base.metadata.tables[table]  # KeyError for anything but a project table
    for name in (*columns, *key, *returning):
        if name not in target.c:
            raise KeyError(f"table {table!r} has no column {name!r}")
    stage = f"_cm_stage_{table}_{next(_STAGE_IDS)}"
    cols = ", ".join(columns)
    conn = session.connection()
    # no constraints, no indexes, no WAL: the cheapest place to COPY into
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"
    )
    raw = conn.connection.dbapi_connection
    assert raw is not None
    json_at = [i for i, c in enumerate(columns) if isinstance(target.c[c].type, JSONB)]
    try:
        with raw.cursor() as cur, cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
            batch: list[str] = []
            for row in rows:
                line = _text_row(row)
                if line is not None:
                    batch.append(line)
                    if len(batch) >= _BATCH:
                        copy.write("".join(batch))
                        batch.clear()
                    continue
                values = list(row)
                for i in json_at:
                    values[i] = None if values[i] is None else Jsonb(values[i])
                if batch:  # keep the rows in order
                    copy.write("".join(batch))
                    batch.clear()
                copy.write_row(values)
            if batch:
                copy.write("".join(batch))
    except psycopg.Error as exc:  # the driver's own error: wrap it as SQLAlchemy would
        raise sa.exc.DBAPIError.instance(
            f"COPY {stage}", None, exc, psycopg.Error, connection_invalidated=raw.closed
        ) from exc
    ret = f" RETURNING {', '.join(returning)}, xmax = 0" if returning else ""
    insert_sql = f"INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {stage}"
    if new:
        result = conn.exec_driver_sql(insert_sql + ret)
        out = [tuple(r) for r in result] if returning else []
    else:
        updates = [c for c in columns if c not in key]
        action = "DO NOTHING"
        if updates:
            action = (
                "DO UPDATE SET "
                + ", ".join(f"{c} = EXCLUDED.{c}" for c in updates)
                + f" WHERE ({', '.join(f't.{c}' for c in updates)}) IS DISTINCT FROM "
                + f"({', '.join(f'EXCLUDED.{c}' for c in updates)})"
            )
        # xmax = 0: a row this statement inserted (an updated row carries our transaction id)
        written = conn.exec_driver_sql(f"{insert_sql} ON CONFLICT ({', '.join(key)}) {action}{ret}")
        out = []
        if returning:
            inserted = {tuple(r[:-1]) for r in written if r[-1]}
            match = " AND ".join(f"t.{k} = s.{k}" for k in key)
            every = conn.exec_driver_sql(
                f"SELECT {', '.join(f't.{c}' for c in returning)} FROM {table} t "
                f"JOIN {stage} s ON {match}"
            )
            out = [(*r, tuple(r) in inserted) for r in every]
    conn.exec_driver_sql(f"DROP TABLE {stage}")
    return out


def upsert_catalogue(session: Session, *, name: str, kind: str, **fields: Any) -> int:
    """Insert or update the catalogue called ``name``; return its id.

    A catalogue's kind never changes: a simulation can never take over a survey catalogue's
    name, nor the other way round.

    Raises
    ------
    CatalogueKindError
        A catalogue of that name exists with another kind.
    """
    values = {"name": name, "kind": kind, **fields}
    stmt = insert(Catalogue).values(**values)
    # The kind check is part of the upsert (``WHERE catalogues.kind = excluded.kind``), so a
    # catalogue of another kind committed by a concurrent session between any read and this
    # statement is never updated: the statement then returns no row, and the error says why.
    stmt = stmt.on_conflict_do_update(
        constraint="uq_catalogues_name",
        set_={k: stmt.excluded[k] for k in values if k != "name"},
        where=Catalogue.kind == stmt.excluded.kind,
    )
    catalogue_id = session.scalar(stmt.returning(Catalogue.id))
    if catalogue_id is None:
        existing = session.scalar(select(Catalogue.kind).where(Catalogue.name == name))
        raise CatalogueKindError(
            f"catalogue {name!r} already exists as a {existing} catalogue; a {kind} catalogue "
            "cannot take its name: choose another name"
        )
    return catalogue_id


def upsert_clusters(
    session: Session,
    catalogue_id: int,
    rows: Sequence[Mapping[str, Any]],
    *,
    new_ids: set[int] | None = None,
) -> dict[str, int]:
    """Upsert clusters keyed by ``(catalogue_id, external_id)``; return external_id -> id.

    Each row holds :class:`db.tables.Cluster` column values (without ``catalogue_id``); a
    column some rows lack is NULL in those. ``new_ids``, when given, receives the ids of the
    clusters this call inserted (nothing can hang on them yet: see ``copy_upsert(new=True)``).
    """
    if not rows:
        return {}
    given = dict.fromkeys(c for row in rows for c in row if c != "catalogue_id")
    columns = ["catalogue_id", *given]
    written = copy_upsert(
        session,
        "clusters",
        columns,
        ((catalogue_id, *(row.get(c) for c in given)) for row in rows),
        key=("catalogue_id", "external_id"),
        returning=("external_id", "id"),
    )
    if new_ids is not None:
        new_ids.update(cid for _, cid, inserted in written if inserted)
    return {ext: cid for ext, cid, _ in written}


def upsert_observables(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Upsert observables keyed by ``(cluster_id, name)``; return the number of rows written.

    Each row holds :class:`db.tables.Observable` column values (``cluster_id``, ``name``,
    ``value``, optional ``unit``, ``error``, ``note``); a column that no row gives is left as
    it is in the database, one that some rows give is NULL/default for the others.
    """
    if not rows:
        return 0
    given = set().union(*(r.keys() for r in rows))
    defaults = {"unit": "", "note": ""}
    columns = ["cluster_id", "name", *(c for c in ("value", "unit", "error", "note") if c in given)]
    copy_upsert(
        session,
        "observables",
        columns,
        ((*(r.get(c, defaults.get(c)) for c in columns),) for r in rows),
        key=("cluster_id", "name"),
    )
    return len(rows)


def copy_observables(
    session: Session, rows: Iterable[tuple[int, str, float, str]], *, new: bool = False
) -> int:
    """Upsert ``(cluster_id, name, value, unit)`` observables (error and note untouched).

    The bulk path of :func:`upsert_observables` for rows built as tuples (a mock's truth
    table); returns the number of rows given. ``new``: every row belongs to a cluster this
    transaction inserted (plain insert, see :func:`copy_upsert`).
    """
    n = 0

    def counted() -> Iterator[tuple[int, str, float, str]]:
        nonlocal n
        for row in rows:
            n += 1
            yield row

    copy_upsert(
        session,
        "observables",
        ("cluster_id", "name", "value", "unit"),
        counted(),
        key=("cluster_id", "name"),
        new=new,
    )
    return n


def catalogue_id_by_name(session: Session, name: str) -> int | None:
    """Return the id of the catalogue called ``name`` (``None`` if absent)."""
    return session.scalar(select(Catalogue.id).where(Catalogue.name == name))
