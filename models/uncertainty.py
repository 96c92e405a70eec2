"""Per-cluster uncertainties (beyond the paper): ensembles and calibration checks.

Two sources of a per-cluster sigma: a heteroscedastic Gaussian head trained with the negative
log-likelihood (Nix & Weigend 1994; Kendall & Gal 2017, NeurIPS), and a deep ensemble of
networks differing only in their seed (Lakshminarayanan, Pritzel & Blundell 2017, NeurIPS),
combined as a Gaussian mixture's mean and variance. Calibration is the empirical coverage of
the central 68% and 95% intervals on held-out (out-of-fold) clusters: a calibrated model covers
68% and 95% of the true masses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

__all__ = ["combine_ensemble", "coverage", "calibration_report"]


def combine_ensemble(
    means: Sequence[np.ndarray], sigmas: Sequence[np.ndarray | None] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mixture mean and standard deviation of ensemble members.

    ``mu = mean_m mu_m`` and ``sigma^2 = mean_m sigma_m^2 + var_m mu_m`` (Lakshminarayanan et
    al. 2017, eq. 4 context). Members without a sigma (point heads) contribute 0 aleatoric
    variance. With one point-head member the sigma is None.
    """
    mu = np.stack([np.asarray(m, dtype=np.float64) for m in means])
    mean = mu.mean(axis=0)
    have = sigmas is not None and any(s is not None for s in sigmas)
    if mu.shape[0] == 1 and not have:
        return mean, None
    aleatoric = np.zeros_like(mean)
    if have:
        sig = np.stack(
            [np.zeros_like(mean) if s is None else np.asarray(s, dtype=np.float64) for s in sigmas]
        )
        aleatoric = (sig**2).mean(axis=0)
    return mean, np.sqrt(aleatoric + mu.var(axis=0))


def coverage(pred: np.ndarray, sigma: np.ndarray, true: np.ndarray, level: float = 0.68) -> float:
    """Fraction of clusters with ``|pred - true| <= z_level sigma`` (Gaussian central interval)."""
    p, s, t = (np.asarray(a, dtype=np.float64) for a in (pred, sigma, true))
    ok = np.isfinite(p) & np.isfinite(s) & np.isfinite(t)
    if not ok.any():
        return float("nan")
    z = norm.ppf(0.5 * (1.0 + level))
    return float(np.mean(np.abs(p[ok] - t[ok]) <= z * s[ok]))


def calibration_report(
    pred: np.ndarray, sigma: np.ndarray, true: np.ndarray, levels: Sequence[float] = (0.68, 0.95)
) -> dict[str, float]:
    """Coverage at each level, the median sigma (dex) and the rms of standardised residuals."""
    p, s, t = (np.asarray(a, dtype=np.float64) for a in (pred, sigma, true))
    ok = np.isfinite(p) & np.isfinite(s) & np.isfinite(t) & (s > 0)
    out = {f"coverage_{int(round(100 * lv))}": coverage(p, s, t, lv) for lv in levels}
    out["median_sigma_dex"] = float(np.median(s[ok])) if ok.any() else float("nan")
    out["rms_z"] = (
        float(np.sqrt(np.mean(((p[ok] - t[ok]) / s[ok]) ** 2))) if ok.any() else float("nan")
    )
    return out
