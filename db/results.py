r"""Results in SQL: binned scatter, bias and percentiles of mass residuals, per run or proxy.

The statistics are computed by PostgreSQL functions created by migrations 0002 and 0006 (see
``docs/sql.md`` for the SQL API). This module calls them with bound parameters and returns
typed rows; it never builds SQL from user input. Everything here reads only the ``v_*`` views
and the results functions, so it works through the read-only ``clustermass_reader`` role.

Definitions (Ho et al. 2023, arXiv:2303.00005, metrics section):

* residual ``r = log10 M_pred - log10 M500c`` [dex], with ``M500c`` the cluster's catalogue or
  true mass (``clusters.log10_m500c``, h^-1 Msun);
* bias = mean(r) [dex]; ``sigma_lnM = stddev_samp(r) * ln 10`` (sample standard deviation,
  ddof = 1: NULL for a bin with one cluster; the paper's numpy ``std`` uses ddof = 0, a
  relative difference of 1 / (2N));
* p16 / p50 / p84: linearly interpolated percentiles of r (``percentile_cont``, identical to
  ``numpy.percentile``'s default);
* bins are half-open ``[lo, hi)`` in log10 M500c [h^-1 Msun] or redshift; every bin is
  returned, empty ones with ``n = 0`` and ``None`` statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.errors import (
    BinEdgesError,
    CatalogueNotFoundError,
    ProxyNotFoundError,
    RunNotFoundError,
    sqlstate,
)

__all__ = [
    "MASS_EDGES",
    "Z_EDGES",
    "AXES",
    "Axis",
    "BinStats",
    "check_edges",
    "ensure_run",
    "scatter",
    "proxy_scatter",
    "refresh",
    "build_index",
    "summary",
    "outliers",
]

MASS_EDGES: tuple[float, ...] = (13.5, 13.75, 14.0, 14.25, 14.5, 15.1)
"""Default log10 M500c bin edges [h^-1 Msun] (the paper's sample spans 13.5-15.07)."""
Z_EDGES: tuple[float, ...] = (0.0, 0.15, 0.3, 0.5)
"""Default redshift bin edges (the paper's snapshots span z = 0.066-0.47)."""

Axis = Literal["mass", "z", "mass_z", "all"]
AXES: tuple[str, ...] = ("mass", "z", "mass_z", "all")
_INF_EDGES = (-math.inf, math.inf)


@dataclass(frozen=True)
class BinStats:
    """Statistics of the residuals in one bin.

    Attributes
    ----------
    axis : {'mass', 'z', 'mass_z', 'all'}
        What was binned.
    mass_lo, mass_hi : float or None
        log10 M500c bin edges [h^-1 Msun] (``None`` when not binned in mass).
    z_lo, z_hi : float or None
        Redshift bin edges (``None`` when not binned in redshift).
    n : int
        Number of residuals in the bin.
    bias_dex : float or None
        Mean residual [dex].
    sigma_lnm : float or None
        Scatter in ln M (dimensionless): sample standard deviation of the residual times ln 10.
    p16_dex, p50_dex, p84_dex : float or None
        16th, 50th and 84th percentiles of the residual [dex].
    """

    axis: str
    mass_lo: float | None
    mass_hi: float | None
    z_lo: float | None
    z_hi: float | None
    n: int
    bias_dex: float | None
    sigma_lnm: float | None
    p16_dex: float | None
    p50_dex: float | None
    p84_dex: float | None

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (column order as declared)."""
        return dict(self.__dict__)


def check_edges(edges: Sequence[float] | None, name: str, default: Sequence[float]) -> list[float]:
    """Return ``edges`` (or ``default``) as floats after checking they make bins.

    Raises
    ------
    BinEdgesError
        Fewer than two edges, NaN, or edges not strictly increasing. ``-inf`` / ``inf`` are
        allowed (open-ended bins).
    """
    values = [float(e) for e in (default if edges is None else edges)]
    bad = len(values) < 2 or any(math.isnan(v) for v in values)
    bad = bad or any(b <= a for a, b in zip(values, values[1:], strict=False))
    if bad:
        raise BinEdgesError(
            f"{name} must hold at least 2 strictly increasing numbers (no NaN); got {values}. "
            f"Example: {','.join(str(e) for e in default)}"
        )
    return values


def ensure_run(session: Session, run_id: int) -> None:
    """Raise :class:`RunNotFoundError` (listing recent run ids) unless the run exists."""
    found = session.scalar(sa.text("SELECT 1 FROM v_runs WHERE run_id = :r"), {"r": run_id})
    if found is None:
        known = session.scalars(
            sa.text("SELECT run_id FROM v_runs ORDER BY run_id DESC LIMIT 20")
        ).all()
        raise RunNotFoundError(
            f"no model run with id {run_id}; latest run ids: {list(known) or 'none'} "
            "(`clustermass query runs` lists them)"
        )


def _ensure_run_catalogue(session: Session, run_id: int, catalogue_id: int) -> None:
    """Raise :class:`CatalogueNotFoundError` unless the run predicted that catalogue."""
    found = session.scalar(
        sa.text("SELECT 1 FROM v_residuals WHERE run_id = :r AND catalogue_id = :c LIMIT 1"),
        {"r": run_id, "c": catalogue_id},
    )
    if found is None:
        known = session.scalars(
            sa.text("SELECT DISTINCT catalogue_id FROM v_residuals WHERE run_id = :r ORDER BY 1"),
            {"r": run_id},
        ).all()
        raise CatalogueNotFoundError(
            f"run {run_id} has no predictions of catalogue {catalogue_id}; it predicted "
            f"catalogue(s) {list(known) or 'none'}"
        )


def _ensure_proxy(session: Session, catalogue_id: int, proxy: str) -> None:
    found = session.scalar(
        sa.text("SELECT 1 FROM v_proxy_residuals WHERE catalogue_id = :c AND proxy = :p LIMIT 1"),
        {"c": catalogue_id, "p": proxy},
    )
    if found is None:
        known = session.scalars(
            sa.text(
                "SELECT DISTINCT proxy FROM v_proxy_residuals WHERE catalogue_id = :c ORDER BY 1"
            ),
            {"c": catalogue_id},
        ).all()
        raise ProxyNotFoundError(
            f"no proxy mass estimates named {proxy!r} in catalogue {catalogue_id}; available: "
            f"{list(known) or 'none (fill them with db.proxy_masses.fit_proxy_estimates)'}"
        )


def _execute(session: Session, sql: str, params: dict[str, Any]) -> list[sa.Row]:
    try:
        return list(session.execute(sa.text(sql), params))
    except DBAPIError as exc:  # the SQL-side check of the edges (invalid_parameter_value)
        if sqlstate(exc) == "22023":
            raise BinEdgesError(str(exc.orig).strip().splitlines()[0]) from exc
        raise


def _rows_to_stats(axis: str, rows: list[sa.Row]) -> list[BinStats]:
    out = []
    for r in rows:
        m = r._mapping
        if axis == "mass_z":
            edges = (m["mass_lo"], m["mass_hi"], m["z_lo"], m["z_hi"])
        elif axis in ("mass", "all"):
            edges = (m["bin_lo"], m["bin_hi"], None, None)
        else:
            edges = (None, None, m["bin_lo"], m["bin_hi"])
        out.append(
            BinStats(
                axis,
                *edges,
                n=int(m["n"]),
                bias_dex=m["bias_dex"],
                sigma_lnm=m["sigma_lnm"],
                p16_dex=m["p16_dex"],
                p50_dex=m["p50_dex"],
                p84_dex=m["p84_dex"],
            )
        )
    return out


_ARR = "CAST(:{} AS double precision[])"


def scatter(
    session: Session,
    *,
    run_id: int,
    by: Axis = "mass",
    mass_edges: Sequence[float] | None = None,
    z_edges: Sequence[float] | None = None,
    input_domain: str | None = "mock",
    catalogue_id: int | None = None,
) -> list[BinStats]:
    """Binned residual statistics of one model run's predictions of one catalogue.

    Parameters
    ----------
    session : Session
        Any session on a migrated database (the reader role is enough).
    run_id : int
        ``model_runs.id``.
    by : {'mass', 'z', 'mass_z', 'all'}
        Bin in log10 M500c, in redshift, in both (mass-major order), or one bin with everything.
    mass_edges : sequence of float, optional
        log10 M500c bin edges [h^-1 Msun]; default :data:`MASS_EDGES`.
    z_edges : sequence of float, optional
        Redshift bin edges; default :data:`Z_EDGES`.
    input_domain : str or None
        ``predictions.input_domain`` to keep: 'mock' (default; mock inputs against true masses),
        'observed' (real images against catalogue masses), or ``None`` for both.
    catalogue_id : int or None
        ``catalogues.id`` of the predictions to use; default (``None``) the run's training
        catalogue (``model_runs.catalogue_id``; every catalogue when the run records none), so
        that predictions of other catalogues never mix into the run's out-of-fold scatter.

    Returns
    -------
    list of BinStats
        One entry per bin, in bin order, empty bins included.

    Raises
    ------
    RunNotFoundError
        No run with that id.
    CatalogueNotFoundError
        ``catalogue_id`` given and the run has no predictions of it (the message lists those
        it has).
    BinEdgesError
        Invalid edges.
    """
    if by not in AXES:
        raise BinEdgesError(f"unknown axis {by!r}; choose one of {', '.join(AXES)}")
    ensure_run(session, run_id)
    if catalogue_id is not None:
        _ensure_run_catalogue(session, run_id, catalogue_id)
    mass = check_edges(mass_edges, "mass_edges", MASS_EDGES)
    z = check_edges(z_edges, "z_edges", Z_EDGES)
    params: dict[str, Any] = {
        "run": run_id,
        "domain": input_domain,
        "mass": mass,
        "z": z,
        "cat": catalogue_id,
    }
    cat = "CAST(:cat AS integer)"
    if by == "mass_z":
        sql = (
            f"SELECT * FROM scatter_by_mass_z(:run, {_ARR.format('mass')}, {_ARR.format('z')}, "
            f":domain, {cat})"
        )
    elif by == "z":
        sql = f"SELECT * FROM scatter_by_z(:run, {_ARR.format('z')}, :domain, {cat})"
    else:
        params["mass"] = list(_INF_EDGES) if by == "all" else mass
        sql = f"SELECT * FROM scatter_by_mass(:run, {_ARR.format('mass')}, :domain, {cat})"
    return _rows_to_stats(by, _execute(session, sql, params))


def proxy_scatter(
    session: Session,
    *,
    catalogue_id: int,
    proxy: str,
    by: Axis = "mass",
    mass_edges: Sequence[float] | None = None,
    z_edges: Sequence[float] | None = None,
) -> list[BinStats]:
    """Binned residual statistics of the masses inferred from one scalar proxy.

    Same as :func:`scatter`, over ``proxy_estimates`` of the clusters of ``catalogue_id``
    (filled by :func:`db.proxy_masses.fit_proxy_estimates` or the official baselines).

    Raises
    ------
    ProxyNotFoundError
        No estimates for that proxy in that catalogue (the message lists the available ones).
    BinEdgesError
        Invalid edges or axis.
    """
    if by not in AXES:
        raise BinEdgesError(f"unknown axis {by!r}; choose one of {', '.join(AXES)}")
    _ensure_proxy(session, catalogue_id, proxy)
    mass = check_edges(mass_edges, "mass_edges", MASS_EDGES)
    z = check_edges(z_edges, "z_edges", Z_EDGES)
    params: dict[str, Any] = {"cat": catalogue_id, "proxy": proxy, "mass": mass, "z": z}
    if by == "mass_z":
        sql = (
            "SELECT * FROM proxy_scatter_by_mass_z(:cat, :proxy, "
            f"{_ARR.format('mass')}, {_ARR.format('z')})"
        )
    elif by == "z":
        sql = f"SELECT * FROM proxy_scatter_by_z(:cat, :proxy, {_ARR.format('z')})"
    else:
        params["mass"] = list(_INF_EDGES) if by == "all" else mass
        sql = f"SELECT * FROM proxy_scatter_by_mass(:cat, :proxy, {_ARR.format('mass')})"
    return _rows_to_stats(by, _execute(session, sql, params))


def build_index(session: Session, run_id: int, *, min_predictions: int | None = None) -> bool:
    """Build the scatter index of a run (revision 0011; docs/sql.md, "Performance").

    With it, :func:`scatter` by mass or redshift answers a run of 10^6 predictions in tens of ms
    instead of hundreds, with the same numbers. Call it after a run's predictions are written
    (any later write drops the index again). Returns False, building nothing, for a run with
    fewer than ``min_predictions`` predictions (default: the database setting
    ``clustermass.scatter_index_min_predictions``, else 50,000; the plain query is faster there)
    or with a non-finite residual. Needs the owner's role.
    """
    return bool(
        session.scalar(
            sa.text("SELECT results_build_index(:run, min_predictions => :min)"),
            {"run": run_id, "min": min_predictions},
        )
    )


def refresh(session: Session) -> None:
    """Rebuild the materialised summary ``v_scatter_summary`` (call after predict/benchmark runs).

    Runs ``SELECT refresh_results()`` in the caller's transaction (``REFRESH MATERIALIZED VIEW
    CONCURRENTLY``: readers keep the old summary until it commits); it first builds the scatter
    index of every run that lacks one (:func:`build_index`). Needs the owner's role, not the
    reader's.
    """
    session.execute(sa.text("SELECT refresh_results()"))


def summary(
    session: Session,
    *,
    axis: Literal["all", "mass", "z"] = "all",
    source: Literal["run", "proxy"] | None = None,
    catalogue_id: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of the materialised all-runs summary for one axis, default bins.

    ``catalogue_id`` restricts the rows to that catalogue (runs' predictions of it and its
    proxies). By default a run's rows are those of its training catalogue only (every
    catalogue for a run that records none) and every proxy row is kept.

    Each row has ``source`` ('run' or 'proxy'), ``subject``, ``run_id``, ``catalogue_id`` (of
    the proxy, or of the run's predictions: one subject per run, input domain and catalogue),
    ``proxy``, ``input_domain``, ``label``, ``axis``, ``bin``, ``bin_lo``, ``bin_hi``, ``n``,
    ``bias_dex``, ``sigma_lnm``, ``p16_dex``, ``p50_dex``, ``p84_dex``. As fresh as the last
    :func:`refresh`.
    """
    if axis not in ("all", "mass", "z"):
        raise BinEdgesError(f"unknown summary axis {axis!r}; choose one of all, mass, z")
    rows = session.execute(
        sa.text(
            "SELECT s.* FROM v_scatter_summary s LEFT JOIN v_runs r ON r.run_id = s.run_id "
            "WHERE s.axis = :axis AND (CAST(:source AS text) IS NULL OR s.source = :source) "
            "AND CASE WHEN CAST(:cat AS integer) IS NULL "
            "THEN s.source = 'proxy' OR r.catalogue_id IS NULL OR s.catalogue_id = r.catalogue_id "
            "ELSE s.catalogue_id = :cat END "
            "ORDER BY s.source DESC, s.run_id, s.catalogue_id, s.proxy, s.input_domain, s.bin"
        ),
        {"axis": axis, "source": source, "cat": catalogue_id},
    )
    return [dict(r._mapping) for r in rows]


def outliers(
    session: Session, *, run_id: int, n_sigma: float = 3.0, input_domain: str | None = "mock"
) -> list[dict[str, Any]]:
    """Predictions whose residual exceeds ``n_sigma`` combined 1-sigma errors.

    The error is ``sqrt(pred_err^2 + catalogue_err^2)`` (``v_residuals.pull``); predictions
    without any error are skipped. Sorted by ``|pull|``, largest first.
    """
    ensure_run(session, run_id)
    rows = session.execute(
        sa.text(
            "SELECT cluster_id, cluster_name, external_id, redshift, log10_m500c, "
            "log10_m500c_err, log10_m500c_pred, log10_m500c_pred_err, residual_dex, pull "
            "FROM v_residuals WHERE run_id = :run AND abs(pull) > :k "
            "AND (CAST(:domain AS text) IS NULL OR input_domain = :domain) "
            "ORDER BY abs(pull) DESC, cluster_id"
        ),
        {"run": run_id, "k": float(n_sigma), "domain": input_domain},
    )
    return [dict(r._mapping) for r in rows]
