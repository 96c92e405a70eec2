"""Bootstrap confidence intervals: BCa (Efron 1987), one definition for every interval producer.

The percentile interval ``[q_(1-l)/2, q_(1+l)/2]`` of the bootstrap replicates assumes the
estimator is median-unbiased. A statistic fitted in-sample (the proxy scatter: an OLS per
snapshot; the Evrard+14 combination of several proxies) is not: resamples with repeated
clusters fit their own noise better, the replicates sit systematically below the full-sample
value, and the value can fall outside its own interval (seen in report artifacts: "M_gas 7.18
[6.12, 7.16]").

BCa (bias-corrected and accelerated; Efron 1987, JASA 82, 171; Efron & Tibshirani 1993,
ch. 14) reads the interval at corrected probabilities

    alpha' = Phi(z0 + (z0 + z_alpha) / (1 - a (z0 + z_alpha)))

with the bias ``z0 = Phi^-1(fraction of replicates below the value)`` and the acceleration
``a = sum d^3 / (6 (sum d^2)^(3/2))`` from jackknife values ``d = mean(theta_(i)) -
theta_(i)``. It is exact for any monotone transformation to a normal, and second-order
accurate.

BCa and the percentile interval contain the full-sample value under the same condition,
``|z0| < z_(1+l)/2`` (with a small acceleration): a value outside its percentile interval is a
value the bootstrap finds biased by more than the interval's half-width, and BCa then moves
the whole interval past it too. The point estimate that belongs with a BCa interval is the
BCa median (``alpha = 0.5``: Efron & Tibshirani 1993, sect. 14.3, the bias-corrected
estimate), which always lies inside it (the corrected probabilities are monotone in alpha).
So :func:`bca` keeps the plain full-sample value as the point estimate whenever it lies inside
its BCa interval (the normal case: every row of docs/benchmark.md), and reports the
bias-corrected estimate instead, flagged, when the bootstrap bias exceeds the interval.
Either way the reported point lies inside its interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["Interval", "acceleration", "bca", "jackknife_groups"]

_NORMAL = NormalDist()

#: Jackknife groups at most (delete-a-group jackknife beyond this many clusters).
MAX_JACKKNIFE_GROUPS = 100


@dataclass(frozen=True)
class Interval:
    """A point estimate with its central ``level`` interval ``[low, high]``.

    ``value`` is what to report: the plain full-sample statistic ``plain`` when it lies inside
    the BCa interval, else the bias-corrected estimate (``bias_corrected`` True).
    """

    value: float
    low: float
    high: float
    plain: float
    bias_corrected: bool = False


def jackknife_groups(n: int, max_groups: int = MAX_JACKKNIFE_GROUPS) -> list[np.ndarray]:
    """Return the indices kept in each delete-a-group jackknife sample of ``n`` items.

    ``min(n, max_groups)`` groups of (nearly) equal size, item ``i`` in group ``i mod G``
    (deterministic). With one item per group this is the ordinary delete-one jackknife; with
    groups of ``m`` items the acceleration estimate is the same to leading order (each group's
    influence is a sum of ``m`` influences: its skewness falls as ``1/sqrt(m)``, the formula's
    ``1/sqrt(G)`` rises by ``sqrt(m)``).
    """
    if n < 2:
        return []
    g = min(n, max_groups)
    label = np.arange(n) % g
    return [np.flatnonzero(label != k) for k in range(g)]


def acceleration(jackknife: np.ndarray) -> float:
    """BCa acceleration ``sum d^3 / (6 (sum d^2)^(3/2))``, ``d = mean - theta_(i)``.

    Non-finite jackknife values are left out; 0 (no acceleration) when fewer than three are
    finite or they are all equal.
    """
    jk = np.asarray(jackknife, dtype=np.float64)
    jk = jk[np.isfinite(jk)]
    if jk.size < 3:
        return 0.0
    d = jk.mean() - jk
    ss = float(np.sum(d**2))
    if ss <= 0.0:
        return 0.0
    return float(np.sum(d**3) / (6.0 * ss**1.5))


def _corrected(alpha: float, z0: float, a: float) -> float:
    """``Phi(z0 + w / (1 - a w))`` with ``w = z0 + z_alpha``, monotone in alpha."""
    w = z0 + _NORMAL.inv_cdf(alpha)
    denom = 1.0 - a * w
    if denom <= 0.0:  # beyond the pole of the transformation: the extreme replicate
        return 1.0 if w > 0 else 0.0
    return _NORMAL.cdf(z0 + w / denom)


def bca(
    value: float,
    replicates: np.ndarray,
    jackknife: np.ndarray | None = None,
    level: float = 0.68,
) -> Interval:
    """BCa interval of a statistic from its bootstrap replicates (and jackknife values).

    Parameters
    ----------
    value : float
        The statistic on the full sample.
    replicates : ndarray (B,)
        The statistic on each bootstrap resample; non-finite ones (failed resamples) are left
        out.
    jackknife : ndarray, optional
        The statistic on each jackknife sample (:func:`jackknife_groups`), for the
        acceleration; without it ``a = 0`` (the bias-corrected percentile interval, BC).
    level : float
        Central probability of the interval, in (0, 1).

    Returns
    -------
    Interval
        ``low <= value <= high`` whenever a replicate is finite; the plain value with
        ``low = high = NaN`` when none is, ``low = high = value`` for a non-finite value.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    value = float(value)
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    if not math.isfinite(value):
        return Interval(value, value, value, value)
    if reps.size == 0:
        return Interval(value, math.nan, math.nan, value)
    b = reps.size
    below = np.count_nonzero(reps < value) + 0.5 * np.count_nonzero(reps == value)
    p0 = min(max(below / b, 0.5 / b), 1.0 - 0.5 / b)
    z0 = _NORMAL.inv_cdf(p0)
    a = 0.0 if jackknife is None else acceleration(jackknife)
    probs = [_corrected(x, z0, a) for x in ((1.0 - level) / 2, (1.0 + level) / 2)]
    lo, hi = (float(q) for q in np.quantile(reps, probs))
    if lo <= value <= hi:
        return Interval(value, lo, hi, value)
    # The bootstrap bias exceeds the interval: BCa has moved into the replicates' tail (it
    # cannot reach past the largest replicate, and narrows there). Correct in value space:
    # the median bias b = median* - value; bias-corrected estimate value - b; its interval the
    # percentile interval moved by -2b (the percentile interval sits at value + b, the truth
    # near value - b: Hall 1992, sect. 3.10).
    q_lo, med, q_hi = np.quantile(reps, [(1.0 - level) / 2, 0.5, (1.0 + level) / 2])
    bias = float(med) - value
    return Interval(value - bias, float(q_lo) - 2 * bias, float(q_hi) - 2 * bias, value, True)
