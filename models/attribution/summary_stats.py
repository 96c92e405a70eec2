"""Population numbers and stacked profiles of a :class:`~.population.PopulationAttribution`.

Every number carries a percentile bootstrap interval from resampling clusters with replacement
within each snapshot (seeded). Pooled medians (over all elements of all clusters, as the authors
computed them) come from the per-cluster log histograms of :mod:`.stats`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from models.attribution.radial import core_radius
from models.attribution.results import PROFILE_KEYS, PopulationAttribution
from models.attribution.stats import (
    bootstrap_estimate,
    bootstrap_weights,
    estimate_from_replicates,
)
from models.intervals import bca

__all__ = ["PAPER", "population_summary", "stacked_profiles"]

#: Ho et al. (2023) numbers (their notebook's outputs), for side-by-side reports.
PAPER: dict[str, dict[str, Any]] = {
    "single": {
        "r_core_over_r500c": 0.285,
        "median_saliency_agn": 10**-3.85,
        "median_saliency_icm": 10**-3.53,
    },
    "multi": {
        "median_saliency_agn": 10**-3.91,
        "median_saliency_icm": 10**-3.77,
        "band_median_saliency": [10**-4.15, 10**-4.17, 10**-4.15],
    },
}

#: Resamples used for the bootstrap bands of the stacked profiles (vector statistics).
_STACK_BOOT = 200


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _clean(v)
        elif isinstance(v, list | tuple | np.ndarray):
            out[k] = [None if not math.isfinite(float(x)) else float(x) for x in np.ravel(v)]
        elif isinstance(v, float | np.floating):
            out[k] = float(v) if math.isfinite(float(v)) else None
        elif isinstance(v, np.integer):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def _resample(strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    groups = [np.flatnonzero(strata == k) for k in np.unique(strata)]
    return np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])


def _nanmedian(x: np.ndarray) -> np.ndarray | float:
    """Median over axis 0 ignoring NaN (NaN where a column has none); fast for 2-D input.

    ``np.nanmedian`` goes through masked arrays for small inputs and dominated the bootstrap.
    """
    a = np.asarray(x, dtype=np.float64)
    flat = a.ndim == 1
    a = a[:, None] if flat else a.reshape(a.shape[0], -1)
    srt = np.sort(a, axis=0)  # NaN sorts last
    n = np.sum(~np.isnan(a), axis=0)
    lo = np.maximum((n - 1) // 2, 0)[None]
    hi = np.maximum(n // 2, 0)[None]
    out = 0.5 * (np.take_along_axis(srt, lo, 0) + np.take_along_axis(srt, hi, 0))[0]
    out = np.where(n > 0, out, np.nan)
    return float(out[0]) if flat else out.reshape(np.shape(x)[1:])


def stacked_profiles(
    profiles: np.ndarray, strata: np.ndarray, *, n_boot: int, level: float, seed: int
) -> np.ndarray:
    """Stack (N, n_bins) profiles: rows median, 16th, 84th percentile, bootstrap low, high.

    The percentiles describe the population's spread; the bootstrap interval is the
    uncertainty of the median (clusters resampled within strata; the bias-corrected interval of
    :func:`models.intervals.bca`, so the median row lies inside it). NaN entries are ignored.
    """
    p = np.asarray(profiles, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = _nanmedian(p)
        p16, p84 = np.nanpercentile(p, [16, 84], axis=0)
        if n_boot > 0:
            rng = np.random.default_rng(seed)
            boots = np.stack([_nanmedian(p[_resample(strata, rng)]) for _ in range(n_boot)])
            ivs = [bca(m, boots[:, j], None, level) for j, m in enumerate(med)]
            med = np.array([iv.value for iv in ivs])
            lo, hi = np.array([iv.low for iv in ivs]), np.array([iv.high for iv in ivs])
        else:
            lo, hi = med, med
    return np.stack([med, p16, p84, lo, hi])


def population_summary(
    res: PopulationAttribution,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return population numbers (JSON-safe dict) and stacked arrays of one method's result.

    Summary keys (each ``x`` with ``x_lo``/``x_hi`` bootstrap bounds):
    ``r_core_over_r500c`` (pooled median ratio profile, unit-consistent weights),
    ``r_core_paper_convention`` (same with the authors' raw saliency), ``r_core_normalised``
    (ratio of the stacked normalised profiles, unit-free, any method), ``median_saliency_agn``,
    ``median_saliency_icm``, ``saliency_icm_over_agn``, ``band_fraction_<c>``; plus
    ``r_core_cluster_median``, ``r_core_cluster_finite_fraction``, ``band_median_saliency``,
    ``kde_fraction_mean`` and ``ig_abs_delta_median`` where they apply, counts and settings, and
    the paper's values under ``paper``.
    """
    cfg = res.config
    pc, hist = res.per_cluster, res.histograms
    strata = np.asarray(pc["strata"])
    edges = res.radial_edges
    centres = 0.5 * (edges[1:] + edges[:-1])
    kw = {"n_boot": cfg.n_boot, "level": cfg.level}
    summary: dict[str, Any] = {
        "method": res.method,
        "bands": res.bands,
        "n_clusters": len(res),
        "n_boot": cfg.n_boot,
        "ci_level": cfg.level,
        "n_radial_bins": cfg.n_bins,
        "r_max_r500c": cfg.r_max,
        "core_threshold": cfg.threshold,
    }
    stacks: dict[str, np.ndarray] = {}
    seed = cfg.seed
    weights = bootstrap_weights(strata, cfg.n_boot, seed)  # (B, N), shared by pooled numbers
    if "ratio" in hist:
        for key, name in (
            ("ratio", "r_core_over_r500c"),
            ("ratio_paper", "r_core_paper_convention"),
        ):
            h = hist[key]
            profile = h.quantile(0.5)
            reps = [core_radius(centres, q, cfg.threshold) for q in h.quantile_many(weights)]
            value = core_radius(centres, profile, cfg.threshold)
            summary |= estimate_from_replicates(value, np.asarray(reps), cfg.level).as_dict(name)
            stacks[f"pooled_{key}"] = profile
            stacks[f"pooled_{key}_hist"] = h.pooled()
        r = np.asarray(pc["r_core"], dtype=np.float64)
        summary["r_core_cluster_median"] = float(_nanmedian(r)) if np.isfinite(r).any() else None
        summary["r_core_cluster_finite_fraction"] = float(np.isfinite(r).mean())
    medians: dict[str, tuple[float, np.ndarray]] = {}
    for key in ("agn", "icm"):
        h = hist[key]
        medians[key] = (float(h.quantile(0.5)), h.quantile_many(weights))
        est = estimate_from_replicates(*medians[key], cfg.level)
        summary |= est.as_dict(f"median_saliency_{key}")
        summary[f"log10_median_saliency_{key}"] = (
            math.log10(est.value) if est.value > 0 and math.isfinite(est.value) else None
        )
        summary[f"n_{key}_elements"] = int(np.sum(pc[f"n_{key}"]))
        stacks[f"pooled_{key}_hist"] = h.pooled()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = estimate_from_replicates(
            medians["icm"][0] / medians["agn"][0], medians["icm"][1] / medians["agn"][1], cfg.level
        )
    summary |= ratio.as_dict("saliency_icm_over_agn")
    fr = np.asarray(pc["band_fractions"], dtype=np.float64)
    for c in range(fr.shape[1]):
        est = bootstrap_estimate(
            lambda i, c=c: float(np.nanmean(fr[i, c])), strata, seed=seed, **kw
        )
        summary |= est.as_dict(f"band_fraction_{c}")
    summary["band_fractions"] = [summary[f"band_fraction_{c}"] for c in range(fr.shape[1])]
    summary["band_median_saliency"] = list(hist["band"].quantile(0.5))
    stacks["pooled_band_hist"] = hist["band"].pooled()
    if "kde_fraction" in pc:
        summary["kde_fraction_mean"] = float(np.nanmean(pc["kde_fraction"]))
    if "ig_delta" in pc:
        summary["ig_abs_delta_median"] = float(np.median(np.abs(pc["ig_delta"])))
        summary["ig_abs_delta_max"] = float(np.max(np.abs(pc["ig_delta"])))
    n_stack = min(cfg.n_boot, _STACK_BOOT)
    for key in PROFILE_KEYS:
        stacks[f"stack_{key}"] = stacked_profiles(
            pc[key], strata, n_boot=n_stack, level=cfg.level, seed=seed
        )
    # Unit-free variant (any method): ratio of the stacked *normalised* profiles.
    fp, fc = np.asarray(pc["profile_proxy_fraction"]), np.asarray(pc["profile_fraction"])

    def normalised_core(i: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            q = _nanmedian(fp[i]) / _nanmedian(fc[i])
        return core_radius(centres, q, cfg.threshold)

    est = bootstrap_estimate(normalised_core, strata, seed=seed, **kw)
    summary |= est.as_dict("r_core_normalised")
    paper_applies = res.method == "saliency" and not res.needs_kde  # no multimodal numbers
    summary["paper"] = PAPER.get(res.bands, {}) if paper_applies else {}
    return _clean(summary), stacks
