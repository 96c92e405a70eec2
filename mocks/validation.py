"""The scalar-proxy mass scatter of Ho et al. (2023, Sect. "Metrics"), used to validate the mocks.

Single proxy s, per snapshot: ordinary least squares ln s = pi + alpha mu with
mu = ln(M500c / 2e14 h^-1 Msun); sigma_lnM = std(residual) / alpha; the reported number is the
mean of sigma_lnM over snapshots. Several proxies at once: per snapshot, C = covariance of the
residuals of the single-proxy fits and sigma^2 = 1 / (alpha^T C^-1 alpha); the reported number is
sqrt(mean over snapshots of sigma^2).

The models package implements the project's official baselines; this copy exists so the mock
package can check itself without importing ``models`` (same arithmetic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from mocks.errors import MockParameterError

__all__ = ["ProxyScatter", "proxy_scatter", "scatter_table", "PAPER_TABLE"]

PAPER_TABLE: dict[str, float] = {
    "T": 0.1175,
    "L_X": 0.2633,
    "M_gas": 0.0846,
    "M_star": 0.1256,
    "sigma_v_true": 0.3756,
    "N_gal": 0.3972,
    "sigma_v_obs": 0.7039,
    "N_phot": 0.4002,
    "N_phot_500c": 0.3407,
    "N_gal+N_phot_500c": 0.2882,
    "N_gal+sigma_v_obs+N_phot+N_phot_500c": 0.2734,
}
"""sigma_lnM of Ho et al. (2023) Table (Magneticum), as fractions."""


@dataclass(frozen=True)
class ProxyScatter:
    """Result of :func:`proxy_scatter`.

    Attributes
    ----------
    sigma : float
        sigma_lnM (fraction, e.g. 0.26 for 26%).
    per_snapshot : ndarray
        sigma_lnM of each snapshot.
    slopes : ndarray
        alpha per snapshot and proxy, shape (n_snapshot, n_proxy).
    n_used : int
        Clusters used (finite, positive proxy values).
    n_dropped : int
        Clusters dropped for non-positive or non-finite proxy values.
    """

    sigma: float
    per_snapshot: NDArray[np.float64]
    slopes: NDArray[np.float64]
    n_used: int
    n_dropped: int


def _values(table: Table, name: str) -> NDArray[np.float64]:
    if name not in table.colnames:
        raise MockParameterError("proxies", f"unknown column {name!r}; have {table.colnames}")
    col = table[name]
    return np.asarray(getattr(col, "value", col), dtype=float)


def proxy_scatter(
    table: Table,
    proxies: Sequence[str],
    mass: str = "m500c",
    snapshot: str = "snapshot",
    pivot: float = 2e14,
    min_per_snapshot: int = 10,
) -> ProxyScatter:
    """sigma_lnM of one or several scalar proxies by the paper's per-snapshot method.

    Parameters
    ----------
    table : Table
        Needs the proxy columns, ``mass`` [h^-1 Msun] and ``snapshot``.
    proxies : sequence of str
        Column names; one gives the single-proxy scatter, several the combined one.
    mass, snapshot : str
        Mass and snapshot columns.
    pivot : float
        Mass pivot of mu = ln(M / pivot) [h^-1 Msun] (does not change the result).
    min_per_snapshot : int
        Snapshots with fewer usable clusters are skipped.

    Raises
    ------
    MockParameterError
        No proxy, an unknown column, or no snapshot with enough clusters.
    """
    if len(proxies) == 0:
        raise MockParameterError("proxies", "give at least one proxy column")
    s = np.column_stack([_values(table, p) for p in proxies])
    m = _values(table, mass)
    snap = np.asarray(table[snapshot])
    ok = np.all(np.isfinite(s) & (s > 0), axis=1) & np.isfinite(m) & (m > 0)
    mu = np.log(m / pivot)
    sig, slopes = [], []
    for k in np.unique(snap[ok]):
        sel = ok & (snap == k)
        if sel.sum() < min_per_snapshot:
            continue
        x = mu[sel]
        design = np.column_stack([np.ones_like(x), x])
        y = np.log(s[sel])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        alpha = coef[1]
        resid = y - design @ coef
        if len(proxies) == 1:
            sig.append(np.std(resid[:, 0]) / abs(alpha[0]))
        else:
            cov = np.cov(resid, rowvar=False, bias=True)
            sig.append(np.sqrt(1.0 / (alpha @ np.linalg.solve(cov, alpha))))
        slopes.append(alpha)
    if not sig:
        raise MockParameterError(
            "table", f"no snapshot has >= {min_per_snapshot} clusters with positive {list(proxies)}"
        )
    per = np.array(sig)
    total = float(per.mean()) if len(proxies) == 1 else float(np.sqrt(np.mean(per**2)))
    return ProxyScatter(total, per, np.array(slopes), int(ok.sum()), int((~ok).sum()))


def scatter_table(
    table: Table, combos: dict[str, Sequence[str]] | None = None
) -> dict[str, ProxyScatter]:
    """Compute the paper's proxy table on a mock truth table.

    Parameters
    ----------
    table : Table
        A mock truth table.
    combos : dict, optional
        Label -> proxy columns; default: the rows of :data:`PAPER_TABLE` plus the
        background-subtracted photon counts and the core-excised luminosity.
    """
    if combos is None:
        combos = {k: k.split("+") for k in PAPER_TABLE}
        combos.update(
            {
                "L_X_ce": ["L_X_ce"],
                "N_phot_bkgsub": ["N_phot_bkgsub"],
                "N_phot_500c_bkgsub": ["N_phot_500c_bkgsub"],
                "N_gal+N_phot_500c_bkgsub": ["N_gal", "N_phot_500c_bkgsub"],
            }
        )
    return {label: proxy_scatter(table, cols) for label, cols in combos.items()}
