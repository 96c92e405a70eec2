r"""Masses inferred from scalar proxies, so the results functions can bin them like predictions.

For each proxy ``s`` (an ``observables.name``: T, L_X, M_gas, N_gal, ...) and each snapshot of
a catalogue, fit by ordinary least squares

.. math:: \ln s = \pi + \alpha \mu, \qquad \mu = \ln(M_{500c} / 2\times10^{14}\,h^{-1}M_\odot)

and invert it for every cluster of the snapshot: ``mu_est = (ln s - pi) / alpha``. This is the
scalar-proxy baseline of Ho et al. (2023, arXiv:2303.00005, metrics section): the scatter of
the inferred masses, ``std(mu_est - mu) = std(residual of ln s) / |alpha|``, is their
sigma_lnM. Fit and inversion use the same clusters (in-sample), as in the paper.

Clusters without a snapshot (survey catalogues) are fitted as one group, 'all'. Non-positive
or non-finite proxy values are skipped (no logarithm).

This is the minimal implementation the results layer needs; the official baselines (several
proxies at once, covariance-weighted combinations) belong in ``models/baselines.py`` and may
overwrite these rows (same table, another ``method``).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db import tables
from db.errors import ProxyFitError, ProxyNotFoundError

__all__ = [
    "PIVOT_LOG10_MASS",
    "ScalingFit",
    "fit_scaling_relation",
    "invert_scaling_relation",
    "fit_proxy_estimates",
]

logger = logging.getLogger(__name__)

PIVOT_LOG10_MASS = math.log10(2e14)
"""Pivot mass of the scaling relations, log10(2e14) [h^-1 Msun] (Ho et al. 2023)."""
METHOD = "ols_per_snapshot"
LN10 = math.log(10.0)


@dataclass(frozen=True)
class ScalingFit:
    """An OLS fit ``ln s = intercept + slope * ln(M / 2e14)`` on one group of clusters.

    Attributes
    ----------
    proxy : str
        Observable name.
    fit_group : str
        'snapshot:<index>' or 'all'.
    n : int
        Clusters in the fit.
    slope : float
        alpha = d ln s / d ln M (dimensionless).
    intercept : float
        pi = ln s at the pivot mass (s in the observable's unit).
    sigma_lnm : float
        Scatter of the inverted masses, std(residual of ln s, ddof=1) / |alpha|.
    """

    proxy: str
    fit_group: str
    n: int
    slope: float
    intercept: float
    sigma_lnm: float


def fit_scaling_relation(
    log10_m500c: np.ndarray,
    value: np.ndarray,
    *,
    proxy: str = "",
    fit_group: str = "all",
    min_clusters: int = 3,
) -> ScalingFit:
    """Fit ``ln s = pi + alpha * mu`` by ordinary least squares.

    Parameters
    ----------
    log10_m500c : ndarray
        log10 M500c [h^-1 Msun].
    value : ndarray
        Proxy values (> 0, in any fixed unit).
    proxy, fit_group : str
        Labels copied into the result.
    min_clusters : int
        Fewest clusters accepted (at least 3: two parameters and one residual).

    Raises
    ------
    ProxyFitError
        Too few clusters, no spread in mass, or a slope of zero (the relation cannot be
        inverted).
    """
    log_m = np.asarray(log10_m500c, dtype=float)
    s = np.asarray(value, dtype=float)
    n = log_m.size
    if n < max(3, min_clusters):
        raise ProxyFitError(
            f"proxy {proxy!r}, group {fit_group}: {n} clusters, need >= {max(3, min_clusters)}"
        )
    mu = (log_m - PIVOT_LOG10_MASS) * LN10
    y = np.log(s)
    dmu = mu - mu.mean()
    var = float(dmu @ dmu)
    if var == 0.0:
        raise ProxyFitError(f"proxy {proxy!r}, group {fit_group}: all clusters have one mass")
    slope = float(dmu @ (y - y.mean())) / var
    if not math.isfinite(slope) or slope == 0.0:
        raise ProxyFitError(f"proxy {proxy!r}, group {fit_group}: slope {slope}, not invertible")
    intercept = float(y.mean() - slope * mu.mean())
    resid = y - intercept - slope * mu
    sigma = float(np.std(resid, ddof=1) / abs(slope))
    return ScalingFit(proxy, fit_group, n, slope, intercept, sigma)


def invert_scaling_relation(value: np.ndarray, fit: ScalingFit) -> np.ndarray:
    """Return log10 M500c [h^-1 Msun] inferred from proxy values through ``fit``."""
    mu = (np.log(np.asarray(value, dtype=float)) - fit.intercept) / fit.slope
    return PIVOT_LOG10_MASS + mu / LN10


def _load(
    session: Session, catalogue_id: int, proxies: Sequence[str] | None
) -> dict[str, list[tuple[int, int | None, float, float]]]:
    o, c = tables.Observable, tables.Cluster
    query = (
        sa.select(o.name, c.id, c.snapshot, c.log10_m500c, o.value)
        .join(c, c.id == o.cluster_id)
        .where(c.catalogue_id == catalogue_id, c.log10_m500c.is_not(None))
    )
    if proxies is not None:
        query = query.where(o.name.in_(list(proxies)))
    by_proxy: dict[str, list[tuple[int, int | None, float, float]]] = defaultdict(list)
    for name, cid, snap, log_m, value in session.execute(query):
        by_proxy[name].append((cid, snap, log_m, value))
    missing = sorted(set(proxies or ()) - set(by_proxy))
    if missing or not by_proxy:
        known = session.scalars(
            sa.select(o.name)
            .distinct()
            .join(c, c.id == o.cluster_id)
            .where(c.catalogue_id == catalogue_id)
            .order_by(o.name)
        ).all()
        raise ProxyNotFoundError(
            f"catalogue {catalogue_id} has no observables {missing or 'at all'} on clusters "
            f"with a mass; observables present: {list(known) or 'none'}"
        )
    return by_proxy


def fit_proxy_estimates(
    session: Session,
    *,
    catalogue_id: int,
    proxies: Sequence[str] | None = None,
    min_clusters: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> list[ScalingFit]:
    """Fit every proxy per snapshot, invert, and replace the catalogue's ``proxy_estimates``.

    Parameters
    ----------
    session : Session
        A session with write access.
    catalogue_id : int
        ``catalogues.id``; only its clusters with a mass take part.
    proxies : sequence of str, optional
        Observable names; default every observable of the catalogue.
    min_clusters : int
        Snapshots with fewer usable clusters are skipped (logged) and get no estimates.
    progress : callable, optional
        Called as ``progress(done_proxies, total_proxies)``.

    Returns
    -------
    list of ScalingFit
        One per (proxy, snapshot) fitted.

    Raises
    ------
    ProxyNotFoundError
        A requested proxy has no values in the catalogue (the message lists those present).
    ProxyFitError
        No snapshot of some proxy could be fitted.
    """
    by_proxy = _load(session, catalogue_id, proxies)
    fits: list[ScalingFit] = []
    for k, (proxy, rows) in enumerate(sorted(by_proxy.items())):
        groups: dict[int | None, list[tuple[int, float, float]]] = defaultdict(list)
        skipped = 0
        for cid, snap, log_m, value in rows:
            if value is not None and math.isfinite(value) and value > 0:
                groups[snap].append((cid, log_m, value))
            else:
                skipped += 1
        if skipped:
            logger.warning("proxy %s: %d non-positive or missing values skipped", proxy, skipped)
        estimates = []
        for snap, members in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0])):
            group = "all" if snap is None else f"snapshot:{snap}"
            cid, log_m, value = (np.array(col) for col in zip(*members, strict=True))
            try:
                fit = fit_scaling_relation(
                    log_m, value, proxy=proxy, fit_group=group, min_clusters=min_clusters
                )
            except ProxyFitError as exc:
                logger.warning("skipped: %s", exc)
                continue
            fits.append(fit)
            est = invert_scaling_relation(value, fit)
            estimates += [
                {
                    "cluster_id": int(i),
                    "proxy": proxy,
                    "log10_m500c_est": float(e),
                    "method": METHOD,
                    "fit_group": group,
                    "slope": fit.slope,
                    "intercept": fit.intercept,
                    "n_fit": fit.n,
                }
                for i, e in zip(cid, est, strict=True)
            ]
        if not estimates:
            raise ProxyFitError(
                f"proxy {proxy!r} in catalogue {catalogue_id}: no snapshot has >= "
                f"{min_clusters} clusters with positive values"
            )
        _replace(session, catalogue_id, proxy, estimates)
        if progress is not None:
            progress(k + 1, len(by_proxy))
    return fits


def _replace(session: Session, catalogue_id: int, proxy: str, rows: list[dict]) -> None:
    e, c = tables.ProxyEstimate, tables.Cluster
    in_catalogue = sa.select(c.id).where(c.catalogue_id == catalogue_id)
    session.execute(sa.delete(e).where(e.proxy == proxy, e.cluster_id.in_(in_catalogue)))
    session.execute(sa.insert(e), rows)
