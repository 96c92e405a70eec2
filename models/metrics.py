"""The metrics of a set of mass predictions: one definition for folds, runs and reports.

Scatter is the ln-mass scatter ``sigma_lnM = std(log10 M_pred - log10 M_true) * ln 10`` and bias
the mean residual in dex (Ho et al. 2023, Sect. 4); intervals are bootstraps that resample
clusters within snapshots (:func:`models.baselines.dl_estimates`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.baselines import dl_bias, dl_estimates, dl_scatter
from models.uncertainty import calibration_report

__all__ = ["residual_summary", "mass_metrics"]


def residual_summary(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """``n`` (finite pairs), ``sigma_lnM`` and ``bias_dex`` of predictions, no interval."""
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(t)
    n = int(ok.sum())
    return {
        "n": n,
        "sigma_lnM": dl_scatter(p[ok], t[ok]) if n else float("nan"),
        "bias_dex": dl_bias(p[ok], t[ok]) if n else float("nan"),
    }


def mass_metrics(
    pred: np.ndarray,
    true: np.ndarray,
    snapshot: np.ndarray | None = None,
    sigma: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> dict[str, Any]:
    """Scatter and bias with bootstrap intervals, plus calibration when uncertainties exist.

    Parameters
    ----------
    pred, true : ndarray (N,)
        Predicted and true log10 M500c [dex]; pairs with a non-finite value are left out.
    snapshot : ndarray (N,), optional
        Snapshot index of each cluster (bootstrap strata); one stratum when None.
    sigma : ndarray (N,), optional
        Predicted 1-sigma uncertainties [dex] (Gaussian head or ensemble spread).

    Returns
    -------
    dict
        ``n``, ``ci_level``, ``n_boot``; with at least two clusters ``sigma_lnM``,
        ``sigma_lnM_lo``, ``sigma_lnM_hi``, ``bias_dex`` (+ ``_lo``/``_hi``) and ``bootstrap``;
        ``calibration`` when ``sigma`` has finite values.
    """
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(t)
    snap = np.zeros(p.size, int) if snapshot is None else np.asarray(snapshot)
    out: dict[str, Any] = {"n": int(ok.sum()), "ci_level": level, "n_boot": n_boot}
    if ok.sum() < 2:
        return out
    scatter, bias = dl_estimates(p[ok], t[ok], snap[ok], n_boot=n_boot, level=level, seed=seed)
    out |= scatter.as_dict("sigma_lnM") | bias.as_dict("bias_dex")
    out["bootstrap"] = {"n_boot": n_boot, "seed": seed, "level": level}
    if sigma is not None:
        s = np.asarray(sigma, dtype=np.float64)[ok]
        if np.isfinite(s).any():
            out["calibration"] = calibration_report(p[ok], s, t[ok])
    return out
