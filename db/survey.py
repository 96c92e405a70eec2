"""Database writes for observed (survey) data: catalogues, rejects, files.

All writes are upserts keyed by natural keys (``catalogues.name``,
``clusters(catalogue_id, external_id)``, ``observables(cluster_id, name)``,
``ingest_files.ingest_key``) and run inside
the caller's transaction (``with session_scope(engine) as s``): one file is one transaction, so
a file either lands completely (good rows + the rejects table) or not at all.

An ingestion's identity is :func:`ingest_key`: the file's checksum, the spec's content and the
options that change the result. Re-ingesting a catalogue (a changed file, a corrected spec)
replaces that catalogue's rows: clusters no longer in the file are removed from it (with their
predictions), and observables the spec maps that a kept cluster no longer has are removed.

Images and galaxies are in :mod:`db.survey_products`; cross-match sets, names and mass
estimates in :mod:`db.mass_catalogue`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db.errors import CatalogueKindError, ClusterNotFoundError
from db.ingest import upsert_catalogue, upsert_observables
from db.mass_catalogue import store_cluster_names
from db.session import session_scope
from db.tables import (
    Catalogue,
    Cluster,
    IngestFile,
    IngestReject,
    Observable,
)
from survey.catalogues import ObservableValue, ParsedCatalogue, Reject

__all__ = [
    "IngestReport",
    "CatalogueKindError",
    "ingest_key",
    "find_ingested",
    "find_ingested_file",
    "already_ingested_report",
    "ingest_parsed_catalogue",
    "record_file",
    "record_refused",
    "record_refusal",
    "observable_rows",
    "catalogue_positions",
]

IngestStatus = Literal["ingested", "partial", "rejected", "skipped"]
_MAX_REJECT_VALUE = 200


@dataclass
class IngestReport:
    """What one ingestion did. ``status='skipped'`` means the file was already ingested."""

    path: str
    kind: str
    sha256: str
    status: IngestStatus
    message: str
    catalogue: str | None = None
    n_rows: int = 0
    n_rejected: int = 0
    n_dropped_values: int = 0
    file_id: int | None = None
    cluster_ids: list[int] = field(default_factory=list)
    products: dict[str, int] = field(default_factory=dict)
    rejects: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary_rows(self) -> list[dict[str, Any]]:
        """Rows for a table artifact / CLI table."""
        return [
            {
                "file": self.path,
                "kind": self.kind,
                "status": self.status,
                "catalogue": self.catalogue or "",
                "rows ingested": self.n_rows,
                "rows rejected": self.n_rejected,
                "values dropped": self.n_dropped_values,
            }
        ]


def ingest_key(sha256: str, kind: str, **identity: Any) -> str:
    """Return the natural key of an ingestion: sha256 of file checksum, kind, identity inputs.

    ``identity`` holds everything besides the file that changes what lands in the database
    (the spec's content, the interloper method, the cluster...), as JSON values.
    """
    doc = {"file_sha256": sha256, "kind": kind, **identity}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def find_ingested(session: Session, key: str) -> IngestFile | None:
    """Return the current ``ingest_files`` row of an ingestion already done, if any.

    ``key`` is an :func:`ingest_key`. A row a newer ingestion of the same target superseded
    (a later spec, another method) does not count: ingesting it again is a change.
    """
    return session.scalar(
        select(IngestFile).where(
            IngestFile.ingest_key == key, IngestFile.status.in_(("ingested", "partial"))
        )
    )


def find_ingested_file(session: Session, sha256: str, kind: str) -> IngestFile | None:
    """Return the newest current ingestion of a file (by checksum), whatever its spec, if any."""
    return session.scalar(
        select(IngestFile)
        .where(
            IngestFile.sha256 == sha256,
            IngestFile.kind == kind,
            IngestFile.status.in_(("ingested", "partial")),
        )
        .order_by(IngestFile.id.desc())
        .limit(1)
    )


def already_ingested_report(row: IngestFile, path: str) -> IngestReport:
    """Report for a file whose checksum is already in ``ingest_files`` (a no-op)."""
    when = row.created_at.strftime("%Y-%m-%d %H:%M") if row.created_at else "earlier"
    return IngestReport(
        path=path,
        kind=row.kind,
        sha256=row.sha256,
        status="skipped",
        message=(
            f"{path}: already ingested ({when}, as {row.path}, sha256 {row.sha256[:12]}...): "
            f"nothing to do; {row.n_rows} rows, {row.n_rejected} rejected"
        ),
        n_rows=row.n_rows,
        n_rejected=row.n_rejected,
        file_id=row.id,
    )


def observable_rows(rows: list[tuple[int, ObservableValue]]) -> list[dict[str, Any]]:
    """Turn ``(cluster_id, ObservableValue)`` pairs into ``observables`` rows."""
    return [
        dict(
            cluster_id=cid,
            name=o.name,
            value=o.value,
            unit=o.unit,
            error=o.error,
            error_lo=o.error_lo,
            error_hi=o.error_hi,
            note=o.note,
        )
        for cid, o in rows
    ]


def record_file(
    session: Session,
    *,
    path: str,
    sha256: str,
    size_bytes: int,
    kind: str,
    status: str,
    message: str,
    key: str,
    target: str | None = None,
    options: dict[str, Any] | None = None,
    n_rows: int = 0,
    n_rejected: int = 0,
    catalogue_id: int | None = None,
    rejects: list[Reject] | None = None,
) -> int:
    """Insert (or replace a refused) ``ingest_files`` row and its rejects; return its id.

    ``key`` is the :func:`ingest_key` (natural key). A successful ingestion of a ``target``
    marks the earlier successful ingestions of that target ``superseded``.
    """
    values = dict(
        ingest_key=key,
        sha256=sha256,
        path=path,
        kind=kind,
        target=target,
        options=options or {},
        size_bytes=size_bytes,
        status=status,
        n_rows=n_rows,
        n_rejected=n_rejected,
        message=message,
        catalogue_id=catalogue_id,
    )
    stmt = insert(IngestFile).values(**values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_ingest_files_ingest_key",
        set_={k: stmt.excluded[k] for k in values if k != "ingest_key"},
        # a refusal never overwrites the record of a successful ingestion
        where=(IngestFile.status == "rejected") if status == "rejected" else None,
    )
    file_id = session.scalar(stmt.returning(IngestFile.id))
    if file_id is None:  # refusal of a file that is already ingested: keep the old record
        return int(session.scalar(select(IngestFile.id).where(IngestFile.ingest_key == key)))
    if target is not None and status != "rejected":
        session.execute(
            update(IngestFile)
            .where(
                IngestFile.target == target,
                IngestFile.id != file_id,
                IngestFile.status.in_(("ingested", "partial")),
            )
            .values(status="superseded")
        )
    if rejects:
        session.execute(delete(IngestReject).where(IngestReject.file_id == file_id))
        session.connection().execute(
            insert(IngestReject.__table__),
            [
                dict(
                    file_id=file_id,
                    row_index=r.row,
                    line_number=r.line,
                    column_name=r.column[:100] if r.column else None,
                    value=None if r.value is None else r.value[:_MAX_REJECT_VALUE],
                    reason=r.reason + ("" if r.row_skipped else " (value dropped, row kept)"),
                )
                for r in rejects
            ],
        )
    return file_id


def record_refused(
    session: Session,
    *,
    path: str,
    sha256: str,
    size_bytes: int,
    kind: str,
    message: str,
    key: str | None = None,
) -> IngestReport:
    """Record a file that was refused as a whole (its own transaction: nothing else lands).

    ``key`` defaults to the file's bare identity (``ingest_key(sha256, kind)``).
    """
    file_id = record_file(
        session,
        path=path,
        sha256=sha256,
        size_bytes=size_bytes,
        kind=kind,
        status="rejected",
        message=message,
        key=key or ingest_key(sha256, kind),
    )
    return IngestReport(path, kind, sha256, "rejected", message, file_id=file_id)


def record_refusal(
    engine: Engine,
    path: Path | str,
    sha: str,
    size: int,
    kind: str,
    exc: Exception,
    *,
    key: str | None = None,
) -> None:
    """Record a refused file in its own transaction (never overwrites a success)."""
    with session_scope(engine) as s:
        record_refused(
            s, path=str(path), sha256=sha, size_bytes=size, kind=kind, message=str(exc), key=key
        )


def ingest_parsed_catalogue(
    session: Session, parsed: ParsedCatalogue, *, key: str, options: dict[str, Any] | None = None
) -> IngestReport:
    """Write a parsed catalogue (catalogue, clusters, observables, file, rejects).

    The catalogue's rows become the file's: clusters of the catalogue that are not in the file
    (any more) are deleted, with what hangs on them (predictions, products...); a cluster whose
    row the file holds but rejected keeps its stored values (the reject says why). Observables
    that the previous or the new spec maps but the file no longer gives a kept cluster are
    deleted. ``key`` is the :func:`ingest_key` of this ingestion. The caller owns the
    transaction; everything here lands or nothing does.
    """
    spec = parsed.spec
    previous = session.scalar(select(Catalogue.config).where(Catalogue.name == spec.name))
    mapped = {o.name for o in spec.all_observables()}
    old_spec = (previous or {}).get("spec") or {}
    for group in ("luminosity", "richness", "sigma_v"):
        if isinstance(old_spec.get(group), dict) and old_spec[group].get("name"):
            mapped.add(old_spec[group]["name"])
    mapped |= {o["name"] for o in old_spec.get("observables") or [] if o.get("name")}
    cat_id = upsert_catalogue(
        session,
        name=spec.name,
        kind="survey",
        description=spec.description,
        citation=spec.citation or None,
        cosmology=spec.cosmology.record(),
        config={"spec": spec.model_dump(mode="json"), "notes": parsed.notes},
        source_path=str(parsed.path),
        source_sha256=parsed.sha256,
    )
    cluster_values = [
        dict(
            catalogue_id=cat_id,
            external_id=r.external_id,
            name=r.name,
            ra_deg=r.ra_deg,
            dec_deg=r.dec_deg,
            redshift=r.redshift,
            log10_m500c=r.log10_m500c,
            log10_m500c_err=r.log10_m500c_err,
            log10_m500c_err_lo=r.log10_m500c_err_lo,
            log10_m500c_err_hi=r.log10_m500c_err_hi,
            r500c_mpc_h=r.r500c_mpc_h,
            mass_note=r.mass_note,
        )
        for r in parsed.rows
    ]
    ids: dict[str, int] = {}
    if cluster_values:
        table = Cluster.__table__
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(
            constraint="uq_clusters_catalogue_id_external_id",
            set_={
                k: stmt.excluded[k]
                for k in cluster_values[0]
                if k not in ("catalogue_id", "external_id")
            },
        )
        result = session.connection().execute(
            stmt.returning(table.c.id, table.c.external_id, sort_by_parameter_order=True),
            cluster_values,
        )
        ids = {ext: cid for cid, ext in result}
        store_cluster_names(
            session,
            [(ids[r.external_id], r.external_id, "external_id") for r in parsed.rows]
            + [(ids[r.external_id], n, col) for r in parsed.rows for col, n in r.aliases],
        )
    # rows the file holds but that failed a check keep what the database has: unknown is not absent
    n_removed = session.execute(
        delete(Cluster).where(
            Cluster.catalogue_id == cat_id,
            Cluster.id.not_in(list(ids.values()) or [-1]),
            Cluster.external_id.not_in(parsed.skipped_ids or [""]),
        )
    ).rowcount
    obs = observable_rows([(ids[r.external_id], o) for r in parsed.rows for o in r.observables])
    if mapped and ids:
        kept = {(o["cluster_id"], o["name"]) for o in obs}
        stale = session.execute(
            select(Observable.id, Observable.cluster_id, Observable.name).where(
                Observable.cluster_id.in_(list(ids.values())), Observable.name.in_(sorted(mapped))
            )
        ).all()
        gone = [oid for oid, cid, name in stale if (cid, name) not in kept]
        if gone:
            session.execute(delete(Observable).where(Observable.id.in_(gone)))
    upsert_observables(session, obs)
    n_rej = parsed.n_skipped
    n_drop = sum(1 for r in parsed.rejects if not r.row_skipped)
    status = "ingested" if not parsed.rejects else "partial"
    message = (
        f"{parsed.path.name}: {len(parsed.rows)} of {parsed.n_input} rows ingested into "
        f"catalogue {spec.name!r}"
        + (f"; {n_rej} rows rejected" if n_rej else "")
        + (f"; {n_drop} values dropped" if n_drop else "")
        + (f"; {n_removed} clusters no longer in the file removed" if n_removed else "")
    )
    file_id = record_file(
        session,
        path=str(parsed.path),
        sha256=parsed.sha256,
        size_bytes=parsed.size_bytes,
        kind="catalogue",
        status=status,
        message=message,
        key=key,
        target=f"catalogue:{spec.name}",
        options=options,
        n_rows=len(parsed.rows),
        n_rejected=n_rej,
        catalogue_id=cat_id,
        rejects=parsed.rejects,
    )
    return IngestReport(
        path=str(parsed.path),
        kind="catalogue",
        sha256=parsed.sha256,
        status=status,
        message=message,
        catalogue=spec.name,
        n_rows=len(parsed.rows),
        n_rejected=n_rej,
        n_dropped_values=n_drop,
        file_id=file_id,
        cluster_ids=list(ids.values()),
        rejects=[r.message(parsed.path.name) for r in parsed.rejects[:20]],
        extra={"notes": parsed.notes, "n_removed": n_removed},
    )


def catalogue_positions(session: Session, name: str) -> dict[str, np.ndarray]:
    """``id``, ``ra``, ``dec``, ``z`` arrays of a catalogue's clusters with positions.

    Raises
    ------
    ClusterNotFoundError
        No catalogue of that name (the message lists the existing ones).
    """
    cat_id = session.scalar(select(Catalogue.id).where(Catalogue.name == name))
    if cat_id is None:
        names = session.scalars(select(Catalogue.name).order_by(Catalogue.name)).all()
        raise ClusterNotFoundError(f"no catalogue named {name!r}; known: {list(names)}")
    rows = session.execute(
        select(Cluster.id, Cluster.ra_deg, Cluster.dec_deg, Cluster.redshift)
        .where(Cluster.catalogue_id == cat_id, Cluster.ra_deg.is_not(None))
        .order_by(Cluster.id)
    ).all()
    arr = np.array(rows, dtype=float).reshape(-1, 4)
    return {"id": arr[:, 0].astype(int), "ra": arr[:, 1], "dec": arr[:, 2], "z": arr[:, 3]}
