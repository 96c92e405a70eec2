"""Pooled quantiles of per-element values across clusters, via per-cluster log histograms.

The authors' population numbers are medians of values *pooled over all pixels of all clusters*
(AGN/ICM saliency, the proxy/saliency ratio per radial bin). Keeping every pixel of 3,285 maps
for each bootstrap replicate is wasteful, so each cluster contributes a histogram of
``log10(value)`` on a fixed grid (with an underflow bin, which also takes 0, and an overflow bin,
which also takes ``inf``); pooled histograms of any resample of clusters are then a weighted sum,
and quantiles are read off the cumulative counts with linear interpolation inside a bin (error
well below one bin width). Bootstrap intervals resample clusters with replacement within each
snapshot (:func:`models.baselines.bootstrap`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.attribution.errors import AttributionError
from models.baselines import Estimate, bootstrap
from models.intervals import bca

__all__ = [
    "LogGrid",
    "SALIENCY_GRID",
    "RATIO_GRID",
    "PooledHistograms",
    "bootstrap_estimate",
    "bootstrap_weights",
    "estimate_from_replicates",
]


@dataclass(frozen=True)
class LogGrid:
    """``n`` equal bins of log10(value) over ``[lo, hi]`` plus underflow and overflow bins."""

    lo: float
    hi: float
    n: int

    @property
    def width(self) -> float:
        """Bin width in dex."""
        return (self.hi - self.lo) / self.n

    @property
    def size(self) -> int:
        """Bins including underflow (index 0) and overflow (index n + 1)."""
        return self.n + 2

    def index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each value (0 underflow incl. zero and negatives, n + 1 overflow incl. inf)."""
        v = np.asarray(values, dtype=np.float64)
        if np.isnan(v).any():
            raise AttributionError("log histograms do not take NaN values")
        with np.errstate(divide="ignore", invalid="ignore"):
            lv = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), -np.inf)
        k = np.floor((lv - self.lo) / self.width)
        k = np.where(lv == np.inf, self.n, k)
        return (np.clip(k, -1, self.n) + 1).astype(np.int64)

    def histogram(self, values: np.ndarray, groups: np.ndarray | None = None, n_groups: int = 1):
        """Return counts per bin (``size``,), or per (group, bin) ``(n_groups, size)`` with ``groups``."""
        k = self.index(values).ravel()
        if groups is None:
            return np.bincount(k, minlength=self.size)
        g = np.asarray(groups, dtype=np.int64).ravel()
        flat = np.bincount(g * self.size + k, minlength=n_groups * self.size)
        return flat[: n_groups * self.size].reshape(n_groups, self.size)

    def quantile(self, counts: np.ndarray, q: float = 0.5) -> np.ndarray:
        """Quantile ``q`` of the values behind ``counts`` (last axis = bins), in value units.

        Returns 0 when it falls in the underflow bin, ``inf`` in the overflow bin, NaN for an
        empty histogram.
        """
        c = np.asarray(counts, dtype=np.float64)
        cum = np.cumsum(c, axis=-1)
        total = cum[..., -1:]
        target = q * total
        k = np.sum(cum < target, axis=-1, keepdims=True)  # first bin reaching the target
        k = np.minimum(k, self.size - 1)
        below = np.where(k > 0, np.take_along_axis(cum, np.maximum(k - 1, 0), -1), 0.0)
        inbin = np.take_along_axis(c, k, -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.clip(np.where(inbin > 0, (target - below) / inbin, 0.5), 0.0, 1.0)
        logv = self.lo + (k - 1 + frac) * self.width
        out = 10.0**logv
        out = np.where(k == 0, 0.0, out)
        out = np.where(k == self.size - 1, np.inf, out)
        out = np.where(total > 0, out, np.nan)
        return out[..., 0]


#: log10 |attribution| from 1e-12 to 1e2 in 0.02 dex (saliency is ~1e-4 per pixel).
SALIENCY_GRID = LogGrid(-12.0, 2.0, 700)
#: log10 (proxy weight / CNN weight) from 1e-4 to 1e8 in 0.1 dex.
RATIO_GRID = LogGrid(-4.0, 8.0, 120)


@dataclass
class PooledHistograms:
    """Per-cluster histograms ``counts[n, ..., bin]`` on one :class:`LogGrid`."""

    grid: LogGrid
    counts: np.ndarray
    _matrix: np.ndarray | None = field(default=None, repr=False)

    def pooled(self, index: np.ndarray | None = None) -> np.ndarray:
        """Sum over the clusters ``index`` (with repeats, as a bootstrap resample)."""
        n = self.counts.shape[0]
        if index is None:
            return self.counts.sum(axis=0, dtype=np.int64)
        if self._matrix is None:  # one float32 copy, reused by every resample (BLAS matvec)
            self._matrix = self.counts.reshape(n, -1).astype(np.float32)
        w = np.bincount(np.asarray(index, dtype=np.int64), minlength=n).astype(np.float32)
        return (w @ self._matrix).astype(np.float64).reshape(self.counts.shape[1:])

    def quantile(self, q: float = 0.5, index: np.ndarray | None = None) -> np.ndarray:
        """Pooled quantile over the clusters ``index`` (all when None)."""
        return self.grid.quantile(self.pooled(index), q)

    def quantile_many(self, weights: np.ndarray, q: float = 0.5, chunk: int = 250) -> np.ndarray:
        """Pooled quantile of many resamples at once: ``weights`` (B, N) cluster multiplicities.

        One matrix product per chunk of resamples (BLAS-3) instead of B matrix-vector products.
        Returns shape ``(B, *counts.shape[1:-1])``.
        """
        n = self.counts.shape[0]
        w = np.asarray(weights, dtype=np.float32)
        if w.ndim != 2 or w.shape[1] != n:
            raise AttributionError(f"weights must have shape (B, {n}); got {w.shape}")
        if self._matrix is None:
            self._matrix = self.counts.reshape(n, -1).astype(np.float32)
        out = []
        for a in range(0, w.shape[0], chunk):
            pooled = (w[a : a + chunk] @ self._matrix).astype(np.float64)
            out.append(self.grid.quantile(pooled.reshape(-1, *self.counts.shape[1:]), q))
        if not out:
            return np.zeros((0, *self.counts.shape[1:-1]))
        return np.concatenate(out)


def bootstrap_weights(strata: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Multiplicity of every cluster in ``n_boot`` resamples with replacement within strata.

    Returns
    -------
    ndarray of float32, shape (n_boot, N)
        Row ``b`` counts how often each cluster appears in resample ``b``.
    """
    s = np.asarray(strata)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(s == k) for k in np.unique(s)]
    w = np.zeros((max(n_boot, 0), s.size), dtype=np.float32)
    for b in range(w.shape[0]):
        idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        w[b] = np.bincount(idx, minlength=s.size)
    return w


def estimate_from_replicates(value: float, replicates: np.ndarray, level: float) -> Estimate:
    """Bias-corrected (BC) interval of bootstrap ``replicates`` around ``value``.

    :func:`models.intervals.bca` without a jackknife (no acceleration: these statistics come
    from pooled histograms, where a jackknife would cost as much as the bootstrap); NaN
    replicates are ignored; the reported value lies inside the interval.
    """
    reps = np.asarray(replicates, dtype=np.float64)
    if reps.size == 0:
        return Estimate(float(value), float(value), float(value), level, 0, float(value))
    iv = bca(value, reps, None, level)
    return Estimate(iv.value, iv.low, iv.high, level, int(reps.size), iv.plain, iv.bias_corrected)


def bootstrap_estimate(
    statistic: Callable[[np.ndarray], float],
    strata: np.ndarray,
    *,
    n_boot: int,
    level: float,
    seed: int,
) -> Estimate:
    """:func:`models.baselines.bootstrap` (clusters resampled within strata), as an Estimate.

    A statistic that is NaN in every resample (e.g. no core radius) gives NaN bounds quietly.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bootstrap(statistic, np.asarray(strata), n_boot=n_boot, level=level, seed=seed)
