"""Scatter metrics: scalar mass proxies, proxy combinations and network predictions.

Definitions follow Ho et al. (2023, arXiv:2303.00005, Sect. 4.1 and their notebook):

- A scalar proxy s at each snapshot: OLS ``ln s = pi + alpha mu`` with ``mu = ln(M / 2e14)``
  (M in h^-1 Msun); ``sigma_lnM = std(residual) / alpha``; the reported value is the mean of
  sigma_lnM over snapshots.
- Several proxies at once (e.g. Evrard et al. 2014, ApJ 781 L1, eq. 4): with the slope vector
  alpha and the covariance C of the residuals at each snapshot, ``sigma^2 = 1 / (alpha^T C^-1
  alpha)``; the combined value is ``sqrt(mean over snapshots of sigma^2)``.
- Network predictions: ``sigma_lnM = std(log10 M_pred - log10 M_true) ln 10`` over all clusters
  and ``bias = mean(log10 M_pred - log10 M_true)`` in dex.

Every number gets a bootstrap confidence interval: clusters are resampled with replacement
within each snapshot (so each snapshot keeps its size), with a seeded generator; the interval
is BCa (:mod:`models.intervals`), and the reported value always lies inside it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.errors import ProxyError
from models.intervals import bca, jackknife_groups

__all__ = [
    "MU_PIVOT",
    "ProxyFit",
    "fit_proxy_snapshot",
    "proxy_scatter",
    "combined_scatter",
    "dl_scatter",
    "dl_bias",
    "Estimate",
    "bootstrap",
    "bootstrap_replicates",
    "proxy_estimate",
    "combined_estimate",
    "dl_estimates",
]

log = logging.getLogger(__name__)

#: Pivot mass of mu = ln(M / MU_PIVOT), h^-1 Msun (Ho et al. 2023).
MU_PIVOT = 2e14
_MIN_PER_SNAPSHOT = 5


@dataclass(frozen=True)
class ProxyFit:
    """OLS of ln s on mu at one snapshot."""

    snapshot: int
    n: int
    intercept: float
    slope: float
    residual_std: float

    @property
    def sigma_lnm(self) -> float:
        """Mass scatter at fixed proxy, ``std(residual) / |alpha|``.

        The paper writes ``std / alpha`` for proxies that rise with mass; a proxy that falls with
        mass (e.g. an interloper-dominated velocity dispersion) is as informative through
        ``|alpha|``, and a scatter is never negative. A slope near zero makes it diverge: that
        proxy carries no mass information.
        """
        return self.residual_std / abs(self.slope)


def _mu(log10_m: np.ndarray) -> np.ndarray:
    return np.asarray(log10_m, dtype=np.float64) * math.log(10.0) - math.log(MU_PIVOT)


def _ols(mu: np.ndarray, lns: np.ndarray) -> tuple[float, float, np.ndarray]:
    slope, intercept = np.polyfit(mu, lns, 1)
    return float(intercept), float(slope), lns - (intercept + slope * mu)


def _clean(log10_m: np.ndarray, proxies: np.ndarray, snapshot: np.ndarray, names: Sequence[str]):
    """Drop clusters with a non-positive or non-finite proxy (cannot take ln); log the count."""
    p = np.atleast_2d(np.asarray(proxies, dtype=np.float64).T).T
    ok = np.all(np.isfinite(p) & (p > 0), axis=1) & np.isfinite(log10_m)
    if not ok.all():
        log.info(
            "proxies %s: dropped %d clusters with non-positive values", list(names), (~ok).sum()
        )
    return np.asarray(log10_m)[ok], p[ok], np.asarray(snapshot)[ok]


def fit_proxy_snapshot(log10_m: np.ndarray, proxy: np.ndarray, snapshot: int = 0) -> ProxyFit:
    """OLS ``ln s = pi + alpha mu`` at one snapshot."""
    if len(proxy) < _MIN_PER_SNAPSHOT:
        raise ProxyError(
            f"snapshot {snapshot}: {len(proxy)} clusters, need >= {_MIN_PER_SNAPSHOT} to fit"
        )
    intercept, slope, res = _ols(_mu(log10_m), np.log(proxy))
    return ProxyFit(int(snapshot), len(proxy), intercept, slope, float(np.std(res)))


def _snapshots(snapshot: np.ndarray) -> list:
    snaps, counts = np.unique(snapshot, return_counts=True)
    keep = [s for s, c in zip(snaps, counts, strict=True) if c >= _MIN_PER_SNAPSHOT]
    if not keep:
        raise ProxyError(f"no snapshot has >= {_MIN_PER_SNAPSHOT} clusters")
    return keep


def proxy_scatter(
    log10_m: np.ndarray, proxy: np.ndarray, snapshot: np.ndarray, *, name: str = "proxy"
) -> float:
    """Mean over snapshots of ``std(residual) / alpha`` for one scalar proxy (ln units).

    Parameters
    ----------
    log10_m : ndarray
        True log10(M500c / (h^-1 Msun)).
    proxy : ndarray
        Positive scalar observable (any units; only its logarithm's slope and scatter matter).
    snapshot : ndarray
        Snapshot of each cluster (one fit per snapshot).
    name : str
        Used in log and error messages.
    """
    m, p, s = _clean(log10_m, proxy, snapshot, [name])
    sig = [fit_proxy_snapshot(m[s == k], p[s == k, 0], k).sigma_lnm for k in _snapshots(s)]
    return float(np.mean(sig))


def combined_scatter(
    log10_m: np.ndarray, proxies: np.ndarray, snapshot: np.ndarray, *, names: Sequence[str] = ()
) -> float:
    """``sqrt(mean_z 1 / (alpha^T C^-1 alpha))`` for proxies (N, k) fitted jointly per snapshot."""
    m, p, s = _clean(log10_m, proxies, snapshot, names)
    var = []
    for k in _snapshots(s):
        sel = s == k
        mu = _mu(m[sel])
        fits = [_ols(mu, np.log(p[sel, j])) for j in range(p.shape[1])]
        alpha = np.array([f[1] for f in fits])
        res = np.stack([f[2] for f in fits])
        cov = np.atleast_2d(np.cov(res, bias=True))
        try:
            q = float(alpha @ np.linalg.solve(cov, alpha))
        except np.linalg.LinAlgError as exc:
            raise ProxyError(
                f"snapshot {k}: singular residual covariance of {list(names)}"
            ) from exc
        if not math.isfinite(q) or q <= 0:  # numerically singular (few clusters, k proxies)
            raise ProxyError(f"snapshot {k}: residual covariance of {list(names)} is singular")
        var.append(1.0 / q)
    return float(math.sqrt(np.mean(var)))


def dl_scatter(pred: np.ndarray, true: np.ndarray) -> float:
    """``std(log10 M_pred - log10 M_true) * ln 10`` (ln-mass scatter of a network)."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.std(d[np.isfinite(d)]) * math.log(10.0))


def dl_bias(pred: np.ndarray, true: np.ndarray) -> float:
    """``mean(log10 M_pred - log10 M_true)`` in dex."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.mean(d[np.isfinite(d)]))


@dataclass(frozen=True)
class Estimate:
    """A number with its bootstrap interval ``[low, high]`` (central ``level``).

    ``value`` is the number to report, always inside ``[low, high]``: the full-sample statistic
    ``plain`` unless the bootstrap finds that biased by more than the interval, then the
    bias-corrected estimate (``bias_corrected``; :func:`models.intervals.bca`).
    """

    value: float
    low: float
    high: float
    level: float = 0.68
    n_boot: int = 0
    plain: float | None = None
    bias_corrected: bool = False

    def as_dict(self, prefix: str) -> dict[str, float]:
        """``{prefix: value, prefix_lo: low, prefix_hi: high}``."""
        return {prefix: self.value, f"{prefix}_lo": self.low, f"{prefix}_hi": self.high}


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    snapshot: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> Estimate:
    """Statistic of the full sample with its BCa bootstrap interval (:mod:`models.intervals`).

    The replicates resample clusters with replacement within each snapshot; the acceleration
    comes from a delete-a-group jackknife (:func:`models.intervals.jackknife_groups`, at most
    100 statistic calls). The reported value is the full-sample statistic, or the
    bias-corrected estimate when the bootstrap bias exceeds the interval (so the value always
    lies inside its interval).

    Parameters
    ----------
    statistic : callable
        Takes an index array into the sample and returns a float.
    snapshot : ndarray
        Strata: clusters are resampled with replacement within each snapshot.
    n_boot : int
        Bootstrap resamples (0: no interval, low = high = value).
    level : float
        Central probability of the interval (0.68 ~ 1 sigma, 0.95).
    seed : int
        Seed of the resampling generator.
    """
    snapshot = np.asarray(snapshot)
    value, stats = bootstrap_replicates(statistic, snapshot, n_boot=n_boot, seed=seed)
    if n_boot <= 0:
        return Estimate(value, value, value, level, 0, value)
    jack = np.array([_safe(statistic, keep) for keep in jackknife_groups(snapshot.size)])
    iv = bca(value, stats, jack, level)
    return Estimate(iv.value, iv.low, iv.high, level, n_boot, value, iv.bias_corrected)


def _safe(statistic: Callable[[np.ndarray], float], idx: np.ndarray) -> float:
    """Evaluate the statistic on ``idx``; NaN where it cannot be (too few clusters, singular)."""
    try:
        return float(statistic(idx))
    except (ProxyError, np.linalg.LinAlgError):
        return math.nan


def bootstrap_replicates(
    statistic: Callable[[np.ndarray], float],
    snapshot: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Return the full-sample statistic and its ``n_boot`` stratified bootstrap replicates.

    Clusters are resampled with replacement within each snapshot (each keeps its size); a
    resample where the statistic cannot be computed gives NaN.
    """
    snapshot = np.asarray(snapshot)
    value = float(statistic(np.arange(snapshot.size)))
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(snapshot == k) for k in np.unique(snapshot)]
    stats = np.empty(max(n_boot, 0))
    for b in range(stats.size):
        idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        stats[b] = _safe(statistic, idx)
    return value, stats


def proxy_estimate(
    log10_m: np.ndarray,
    proxy: np.ndarray,
    snapshot: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
    name: str = "proxy",
) -> Estimate:
    """:func:`proxy_scatter` with a bootstrap interval."""
    m, p, s = (np.asarray(a) for a in (log10_m, proxy, snapshot))
    return bootstrap(
        lambda i: proxy_scatter(m[i], p[i], s[i], name=name),
        s,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )


def combined_estimate(
    log10_m: np.ndarray,
    proxies: np.ndarray,
    snapshot: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
    names: Sequence[str] = (),
) -> Estimate:
    """:func:`combined_scatter` with a bootstrap interval."""
    m, p, s = np.asarray(log10_m), np.asarray(proxies), np.asarray(snapshot)
    return bootstrap(
        lambda i: combined_scatter(m[i], p[i], s[i], names=names),
        s,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )


def dl_estimates(
    pred: np.ndarray,
    true: np.ndarray,
    snapshot: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> tuple[Estimate, Estimate]:
    """(scatter, bias) of network predictions, each with a bootstrap interval."""
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    s = np.zeros(p.size, int) if snapshot is None else np.asarray(snapshot)[ok]
    scatter = bootstrap(lambda i: dl_scatter(p[i], t[i]), s, n_boot=n_boot, level=level, seed=seed)
    bias = bootstrap(lambda i: dl_bias(p[i], t[i]), s, n_boot=n_boot, level=level, seed=seed)
    return scatter, bias
