"""The mass catalogue: match sets, names and aliases, mass estimates, catalogue management.

* :func:`store_match_set` - one cross-match of two catalogues under one parameter set. The set's
  natural key is (catalogue A, catalogue B, parameters): re-running it replaces its pairs in
  the caller's transaction (atomically); other parameters make another set. The views use the
  latest set of each pair of catalogues (newest ``computed_at``), see docs/sql.md.
* :func:`store_cluster_names` / :func:`find_clusters_by_name` - every name a source gives a
  cluster, searched through ``cm_name_key`` (case, spaces and underscores ignored; ``Abell``
  and ``ACO`` before a number read as ``A``: ``Abell 1656`` = ``A1656`` = ``ABELL1656``).
* :func:`store_mass_estimate` - an estimate keyed by (cluster, method, source): a second
  member table of a cluster adds a row, it never overwrites the first.
* :func:`catalogue_summaries` / :func:`catalogue_detail` / :func:`delete_catalogue` - what the
  ``clustermass catalogue`` command shows and removes.

The physical-cluster rule (SQL function ``physical_clusters``, revision 0007): clusters of
survey catalogues are the nodes, the pairs of the match set in use for each pair of catalogues
are the edges; each connected component is one physical cluster, and its id is the smallest
``clusters.id`` in it, i.e. the member ingested first (ids grow with ingestion). The id is
stable as long as that member stays in the component.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.catalogues import resolve_catalogue
from db.errors import CatalogueInUseError
from db.tables import (
    Catalogue,
    Cluster,
    ClusterMatch,
    ClusterName,
    IngestFile,
    MassEstimate,
    MatchSet,
    ModelRun,
    Prediction,
    Product,
)

__all__ = [
    "MatchSetResult",
    "params_key",
    "store_match_set",
    "latest_match_count",
    "store_cluster_names",
    "find_clusters_by_name",
    "store_mass_estimate",
    "catalogue_summaries",
    "catalogue_detail",
    "delete_catalogue",
    "mass_catalogue_rows",
    "flatten_mass_catalogue",
]


@dataclass
class MatchSetResult:
    """What :func:`store_match_set` did: the set's id and name, whether it existed before."""

    id: int
    name: str
    replaced: bool
    n_matches: int
    n_previous: int


def params_key(params: dict[str, Any]) -> str:
    """Return the natural key of match parameters: sha256 of their canonical JSON."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def store_match_set(
    session: Session,
    catalogue_a: str,
    catalogue_b: str,
    pairs: list[tuple[int, int, float, float]],
    *,
    params: dict[str, Any],
    method: str,
) -> MatchSetResult:
    """Store a cross-match ``(cluster_id_a, cluster_id_b, separation_arcsec, delta_z)`` as a set.

    The set of (A, B, ``params``) is created, or, when it exists, its pairs are replaced and its
    ``computed_at`` set to now (it becomes the latest set of the pair), in the caller's
    transaction: readers see the old pairs or the new ones, never a mixture.

    Raises
    ------
    db.errors.CatalogueNotFoundError
        No catalogue of that name (the message lists the known ones).
    """
    cat_a = resolve_catalogue(session, catalogue_a)
    cat_b = resolve_catalogue(session, catalogue_b)
    key = params_key(params)
    name = f"{cat_a.name} x {cat_b.name} [{method}]"[:300]
    stmt = insert(MatchSet).values(
        name=name,
        catalogue_id_a=cat_a.id,
        catalogue_id_b=cat_b.id,
        params=params,
        params_key=key,
        method=method,
        n_matches=len(pairs),
    )
    stmt = stmt.on_conflict_do_update(
        constraint="uq_match_sets_catalogue_id_a_catalogue_id_b_params_key",
        set_={
            "n_matches": stmt.excluded.n_matches,
            "method": stmt.excluded.method,
            "name": stmt.excluded.name,
            "computed_at": func.clock_timestamp(),
        },
    )
    row = session.execute(
        stmt.returning(MatchSet.id, MatchSet.created_at != MatchSet.computed_at)
    ).one()
    set_id, replaced = int(row[0]), bool(row[1])
    n_previous = session.execute(
        delete(ClusterMatch).where(ClusterMatch.match_set_id == set_id)
    ).rowcount
    if pairs:
        session.connection().execute(
            insert(ClusterMatch.__table__),
            [
                dict(
                    match_set_id=set_id,
                    cluster_id_a=a,
                    cluster_id_b=b,
                    separation_arcsec=s,
                    delta_z=dz,
                    method=method[:64],
                )
                for a, b, s, dz in pairs
            ],
        )
    return MatchSetResult(set_id, name, replaced, len(pairs), int(n_previous or 0))


def latest_match_count(session: Session, catalogue_a: str, catalogue_b: str) -> int:
    """Count the pairs of the latest match set of two catalogues (either order; 0 if none)."""
    a = resolve_catalogue(session, catalogue_a).id
    b = resolve_catalogue(session, catalogue_b).id
    return int(
        session.scalar(
            sa.text(
                "SELECT coalesce(sum(s.n_matches), 0) FROM match_sets s "
                "WHERE s.id IN (SELECT match_set_id FROM match_sets_in_use(NULL)) "
                "AND least(s.catalogue_id_a, s.catalogue_id_b) = least(:a, :b) "
                "AND greatest(s.catalogue_id_a, s.catalogue_id_b) = greatest(:a, :b)"
            ),
            {"a": a, "b": b},
        )
        or 0
    )


def store_cluster_names(
    session: Session, names: list[tuple[int, str, str]], *, replace: bool = True
) -> int:
    """Store ``(cluster_id, name, source)`` names; return how many rows were written.

    With ``replace`` the clusters named here lose their other names first (a re-ingested
    catalogue brings its names anew: an alias the file no longer gives goes). Empty names are
    skipped; two names with the same search key on one cluster are stored once (the first).
    """
    rows = [(int(c), n.strip()[:200], s[:100]) for c, n, s in names if n and n.strip()]
    if replace and rows:
        ids = sorted({c for c, _, _ in rows})
        session.execute(delete(ClusterName).where(ClusterName.cluster_id.in_(ids)))
    if not rows:
        return 0
    values = sa.values(
        sa.column("cluster_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("source", sa.String),
        name="v",
    ).data(rows)
    stmt = insert(ClusterName).from_select(
        ["cluster_id", "name", "name_key", "source"],
        select(
            values.c.cluster_id, values.c.name, func.cm_name_key(values.c.name), values.c.source
        ),
    )
    stmt = stmt.on_conflict_do_nothing(constraint="uq_cluster_names_cluster_id_name_key")
    return int(session.execute(stmt).rowcount or 0)


def find_clusters_by_name(session: Session, query: str) -> list[int]:
    """Ids of the clusters with a name or alias matching ``query`` (case/spacing-insensitive).

    Reads ``v_cluster_names`` only (works as ``clustermass_reader``).
    """
    return [
        int(c)
        for c in session.scalars(
            sa.text(
                "SELECT DISTINCT cluster_id FROM v_cluster_names "
                "WHERE name_key = cm_name_key(:q) ORDER BY cluster_id"
            ),
            {"q": query},
        )
    ]


def store_mass_estimate(
    session: Session,
    *,
    cluster_id: int,
    method: str,
    source: str,
    log10_m500c: float | None,
    log10_m500c_err: float | None,
    n_members: int | None = None,
    interlopers: str | None = None,
    flags: list[str] | None = None,
    details: dict[str, Any] | None = None,
    file_id: int | None = None,
) -> int:
    """Insert or replace the estimate of (``cluster_id``, ``method``, ``source``); return its id.

    Only the same cluster, method and source is replaced (a re-ingested member table); another
    member table or another method adds a row.
    """
    values = dict(
        cluster_id=cluster_id,
        method=method[:64],
        source=source[:300],
        log10_m500c=log10_m500c,
        log10_m500c_err=log10_m500c_err,
        n_members=n_members,
        interlopers=interlopers,
        flags=list(flags or []),
        details=details or {},
        file_id=file_id,
    )
    stmt = insert(MassEstimate).values(**values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_mass_estimates_cluster_id_method_source",
        set_={
            **{k: stmt.excluded[k] for k in values if k not in ("cluster_id", "method", "source")},
            "created_at": func.now(),
        },
    )
    return int(session.scalar(stmt.returning(MassEstimate.id)))


def _runs_using(session: Session, cat_id: int) -> list[tuple[int, str]]:
    """Model runs trained on the catalogue or holding predictions of its clusters."""
    with_predictions = (
        select(Prediction.run_id)
        .join(Cluster, Cluster.id == Prediction.cluster_id)
        .where(Cluster.catalogue_id == cat_id)
    )
    return [
        (int(i), n)
        for i, n in session.execute(
            select(ModelRun.id, ModelRun.name)
            .where((ModelRun.catalogue_id == cat_id) | ModelRun.id.in_(with_predictions))
            .order_by(ModelRun.id)
        )
    ]


def catalogue_summaries(session: Session) -> list[dict[str, Any]]:
    """One row per catalogue: kind, clusters, names, estimates, match sets, runs, source."""
    n_clusters = select(func.count()).where(Cluster.catalogue_id == Catalogue.id).scalar_subquery()
    n_mass = (
        select(func.count())
        .where(Cluster.catalogue_id == Catalogue.id, Cluster.log10_m500c.is_not(None))
        .scalar_subquery()
    )
    n_est = (
        select(func.count())
        .select_from(MassEstimate)
        .join(Cluster, Cluster.id == MassEstimate.cluster_id)
        .where(Cluster.catalogue_id == Catalogue.id)
        .scalar_subquery()
    )
    n_sets = (
        select(func.count())
        .where(
            (MatchSet.catalogue_id_a == Catalogue.id) | (MatchSet.catalogue_id_b == Catalogue.id)
        )
        .scalar_subquery()
    )
    n_runs = select(func.count()).where(ModelRun.catalogue_id == Catalogue.id).scalar_subquery()
    rows = session.execute(
        select(
            Catalogue.id,
            Catalogue.name,
            Catalogue.kind,
            n_clusters.label("n_clusters"),
            n_mass.label("n_with_mass"),
            n_est.label("n_estimates"),
            n_sets.label("n_match_sets"),
            n_runs.label("n_runs"),
            Catalogue.source_path,
            Catalogue.created_at,
        ).order_by(Catalogue.id)
    ).all()
    return [dict(r._mapping) for r in rows]


def catalogue_detail(session: Session, ref: str | int) -> dict[str, Any]:
    """One catalogue: its row, counts, match sets, runs using it, ingestions and reject count.

    Raises
    ------
    db.errors.CatalogueNotFoundError
        No such catalogue (the message lists the known ones).
    """
    cat = resolve_catalogue(session, ref)
    summary = next(r for r in catalogue_summaries(session) if r["id"] == cat.id)
    sets = session.execute(
        sa.text(
            "SELECT match_set_id, catalogue_a, catalogue_b, method, n_matches, computed_at, "
            "is_latest FROM v_match_sets WHERE :c IN (catalogue_id_a, catalogue_id_b) "
            "ORDER BY match_set_id"
        ),
        {"c": cat.id},
    ).all()
    files = session.execute(
        select(
            IngestFile.id, IngestFile.path, IngestFile.status, IngestFile.n_rows,
            IngestFile.n_rejected, IngestFile.created_at,
        )
        .where(IngestFile.catalogue_id == cat.id)
        .order_by(IngestFile.id)
    ).all()  # fmt: skip
    return {
        **summary,
        "description": cat.description,
        "citation": cat.citation,
        "cosmology": cat.cosmology,
        "match_sets": [dict(r._mapping) for r in sets],
        "runs": [{"run_id": i, "name": n} for i, n in _runs_using(session, cat.id)],
        "ingestions": [dict(r._mapping) for r in files],
    }


def delete_catalogue(session: Session, ref: str | int, *, force: bool = False) -> dict[str, Any]:
    """Delete a catalogue with its clusters, names, matches, match sets and mass estimates.

    Predictions and products rows of its clusters go with them (foreign keys cascade); the
    product *files* stay in the file store (``clustermass db verify`` lists them as
    unreferenced and keeps them). Its ingestions are marked ``superseded``, so ingesting
    the file again is not answered "already ingested". Returns counts of what was removed.

    Raises
    ------
    CatalogueInUseError
        Model runs were trained on it or hold predictions of its clusters, and ``force`` is
        false (the message lists them).
    """
    cat = resolve_catalogue(session, ref)
    runs = _runs_using(session, cat.id)
    if runs and not force:
        listed = ", ".join(f"{i} ({n})" for i, n in runs[:10])
        raise CatalogueInUseError(
            f"catalogue {cat.name!r} is used by {len(runs)} model run(s): {listed}; their "
            "predictions of its clusters would be deleted with it: pass --force to delete anyway"
        )
    ids = select(Cluster.id).where(Cluster.catalogue_id == cat.id)
    counts = {
        "catalogue": cat.name,
        "clusters": session.scalar(select(func.count()).select_from(ids.subquery())) or 0,
        "match_sets": session.scalar(
            select(func.count()).where(
                (MatchSet.catalogue_id_a == cat.id) | (MatchSet.catalogue_id_b == cat.id)
            )
        ),
        "matches": session.scalar(
            select(func.count()).where(
                ClusterMatch.cluster_id_a.in_(ids) | ClusterMatch.cluster_id_b.in_(ids)
            )
        ),
        "mass_estimates": session.scalar(
            select(func.count()).where(MassEstimate.cluster_id.in_(ids))
        ),
        "predictions": session.scalar(select(func.count()).where(Prediction.cluster_id.in_(ids))),
        "products": session.scalar(select(func.count()).where(Product.cluster_id.in_(ids))),
        "runs": [i for i, _ in runs],
    }
    # the ingestions that wrote into it no longer stand: a new ingestion is not "already done"
    id_list = [str(i) for i in session.scalars(ids)]
    targets = [f"catalogue:{cat.name}"]
    session.execute(
        update(IngestFile)
        .where(
            IngestFile.status.in_(("ingested", "partial")),
            (IngestFile.catalogue_id == cat.id)
            | IngestFile.target.in_(targets)
            | func.split_part(IngestFile.target, ":", 2).in_(id_list or ["-"]),
        )
        .values(status="superseded")
    )
    session.execute(delete(Catalogue).where(Catalogue.id == cat.id))
    return counts


def mass_catalogue_rows(
    session: Session, match_sets: list[int] | None = None
) -> list[dict[str, Any]]:
    """Rows of ``mass_catalogue(match_sets)`` (``v_mass_catalogue`` when None), by physical id.

    Reads only what ``clustermass_reader`` may read.
    """
    rows = session.execute(
        sa.text("SELECT * FROM mass_catalogue(CAST(:s AS integer[]))"),
        {"s": match_sets or None},
    )
    return [dict(r._mapping) for r in rows]


def _column_key(name: str) -> str:
    """Return a column-name-safe form of a catalogue name (letters, digits, underscores)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_") or "catalogue"


def flatten_mass_catalogue(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Flat columns of :func:`mass_catalogue_rows` for CSV, FITS and VOTable.

    One column pair ``log10_m500c_<catalogue>`` / ``log10_m500c_err_<catalogue>`` per catalogue
    present (the first member of that catalogue when a physical cluster holds several: flag
    ``ambiguous_match``), one pair per CNN run (``log10_m500c_cnn_run<id>``), the newest
    dynamical mass with its member count and the number of dynamical results, the newest
    CNN mass and its run, names, catalogues and flags joined by ``'; '``. All masses are
    log10 M500c [h^-1 Msun]; errors in dex. Returns the column order and the rows.
    """
    cats: dict[str, None] = {}
    runs: dict[int, None] = {}
    for r in rows:
        for m in r["catalogue_masses"]:
            cats.setdefault(m["catalogue"], None)
        for m in r["cnn_masses"]:
            runs.setdefault(int(m["run_id"]), None)
    columns = ["physical_id", "name", "names", "catalogues", "n_catalogues", "cluster_ids"]
    columns += ["ra_deg", "dec_deg", "redshift"]
    for c in cats:
        k = _column_key(c)
        columns += [f"log10_m500c_{k}", f"log10_m500c_err_{k}"]
    columns += ["log10_m500c_dyn", "log10_m500c_dyn_err", "n_members_dyn", "n_dynamical"]
    columns += ["log10_m500c_cnn", "log10_m500c_cnn_err", "cnn_run_id"]
    for run in sorted(runs):
        columns += [f"log10_m500c_cnn_run{run}", f"log10_m500c_cnn_err_run{run}"]
    columns += ["flags"]
    out = []
    for r in rows:
        flat: dict[str, Any] = dict.fromkeys(columns)
        for k in ("physical_id", "name", "n_catalogues", "ra_deg", "dec_deg", "redshift"):
            flat[k] = r[k]
        flat["names"] = "; ".join(sorted(r["names"]))
        flat["catalogues"] = "; ".join(sorted(r["catalogues"]))
        flat["cluster_ids"] = "; ".join(str(i) for i in r["cluster_ids"])
        for m in reversed(r["catalogue_masses"]):  # the first member of a catalogue wins
            k = _column_key(m["catalogue"])
            flat[f"log10_m500c_{k}"] = m["log10_m500c"]
            flat[f"log10_m500c_err_{k}"] = m["log10_m500c_err"]
        dyn = r["dynamical_masses"]
        flat["log10_m500c_dyn"] = r["log10_m500c_dyn"]
        flat["log10_m500c_dyn_err"] = r["log10_m500c_dyn_err"]
        flat["n_members_dyn"] = dyn[-1]["n_members"] if dyn else None
        flat["n_dynamical"] = len(dyn)
        flat["log10_m500c_cnn"] = r["log10_m500c_cnn"]
        flat["log10_m500c_cnn_err"] = r["log10_m500c_cnn_err"]
        flat["cnn_run_id"] = r["cnn_run_id"]
        for m in r["cnn_masses"]:
            flat[f"log10_m500c_cnn_run{m['run_id']}"] = m["log10_m500c"]
            flat[f"log10_m500c_cnn_err_run{m['run_id']}"] = m["log10_m500c_err"]
        flat["flags"] = "; ".join(r["flags"])
        out.append(flat)
    return columns, out
