"""Everything the database knows about one cluster, read through the results views.

Works with the read-only ``clustermass_reader`` role: only ``v_clusters``, ``v_observables``,
``v_residuals``, ``v_proxy_residuals``, ``v_attributions``, ``v_cluster_names``,
``v_mass_estimates`` and ``v_physical_clusters`` are read, always with bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from db.errors import ClusterNotFoundError

__all__ = ["ClusterReport", "find_clusters", "cluster_report"]


@dataclass
class ClusterReport:
    """One cluster: catalogue values, observables, predictions, proxy masses, attributions.

    Every list holds plain dicts, one per row of the corresponding view (column name -> value).
    """

    cluster: dict[str, Any]
    observables: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    proxy_estimates: list[dict[str, Any]] = field(default_factory=list)
    attributions: list[dict[str, Any]] = field(default_factory=list)
    names: list[dict[str, Any]] = field(default_factory=list)
    mass_estimates: list[dict[str, Any]] = field(default_factory=list)
    same_physical_cluster: list[dict[str, Any]] = field(default_factory=list)
    """The other catalogues' clusters matched to this one (``v_physical_clusters``)."""


def _dicts(session: Session, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(sa.text(sql), params)]


def find_clusters(session: Session, name: str) -> list[dict[str, Any]]:
    """Clusters whose name, any alias, external id or numeric id equals ``name``.

    Names and aliases (``v_cluster_names``) match case- and spacing-insensitively, with
    ``Abell``/``ACO`` before a number read as ``A`` (``A1656`` = ``Abell 1656`` = ``ABELL1656``).

    Raises
    ------
    ClusterNotFoundError
        Nothing matches; the message suggests up to five names that contain ``name``.
    """
    rows = _dicts(
        session,
        "SELECT * FROM v_clusters WHERE lower(name) = lower(:q) OR external_id = :q "
        "OR cluster_id::text = :q OR cluster_id IN (SELECT n.cluster_id FROM v_cluster_names n "
        "WHERE n.name_key = cm_name_key(:q)) ORDER BY catalogue_id, cluster_id",
        q=name,
    )
    if rows:
        return rows
    similar = session.scalars(
        sa.text(
            "SELECT DISTINCT name FROM v_clusters "
            "WHERE name IS NOT NULL AND strpos(lower(name), lower(:q)) > 0 ORDER BY name LIMIT 5"
        ),
        {"q": name},
    ).all()
    hint = f"; similar names: {', '.join(similar)}" if similar else ""
    raise ClusterNotFoundError(
        f"no cluster named {name!r} (matched against name, external id and id){hint}"
    )


def cluster_report(session: Session, name: str) -> list[ClusterReport]:
    """Return reports for every cluster matching ``name`` (see :func:`find_clusters`).

    Predictions list every run (newest run first) with the residual and pull of
    ``v_residuals``; attributions list the per-run summaries (core radius, median AGN/ICM
    saliency, band fractions).
    """
    reports = []
    for row in find_clusters(session, name):
        cid = row["cluster_id"]
        reports.append(
            ClusterReport(
                cluster=row,
                observables=_dicts(
                    session,
                    "SELECT name, value, unit, error, note FROM v_observables "
                    "WHERE cluster_id = :c ORDER BY name",
                    c=cid,
                ),
                predictions=_dicts(
                    session,
                    "SELECT run_id, run_name, run_kind, fold, input_domain, instrument, "
                    "log10_m500c_pred, log10_m500c_pred_err, residual_dex, pull "
                    "FROM v_residuals WHERE cluster_id = :c ORDER BY run_id DESC",
                    c=cid,
                ),
                proxy_estimates=_dicts(
                    session,
                    "SELECT proxy, method, fit_group, log10_m500c_est, residual_dex "
                    "FROM v_proxy_residuals WHERE cluster_id = :c ORDER BY proxy",
                    c=cid,
                ),
                attributions=_dicts(
                    session,
                    "SELECT run_id, method, r_core_over_r500c, median_saliency_agn, "
                    "median_saliency_icm, band_fractions FROM v_attributions "
                    "WHERE cluster_id = :c ORDER BY run_id DESC, method",
                    c=cid,
                ),
                names=_dicts(
                    session,
                    "SELECT name, source FROM v_cluster_names WHERE cluster_id = :c ORDER BY name",
                    c=cid,
                ),
                same_physical_cluster=_dicts(
                    session,
                    "SELECT p.physical_id, c.cluster_id, c.catalogue_name, c.external_id, c.name, "
                    "c.redshift FROM v_physical_clusters p JOIN v_clusters c USING (cluster_id) "
                    "WHERE p.physical_id = (SELECT physical_id FROM v_physical_clusters "
                    "WHERE cluster_id = :c) AND c.cluster_id <> :c ORDER BY c.cluster_id",
                    c=cid,
                ),
                mass_estimates=_dicts(
                    session,
                    "SELECT method, source, run_id, log10_m500c, log10_m500c_err, n_members, "
                    "interlopers, flags FROM v_mass_estimates WHERE cluster_id = :c "
                    "ORDER BY method, created_at",
                    c=cid,
                ),
            )
        )
    return reports
