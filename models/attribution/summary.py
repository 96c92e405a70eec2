"""Everything measured on one cluster's attribution map (pure numpy).

:func:`summarise_cluster` turns one map plus the cluster's count maps into a
:class:`ClusterSummary`: radial profiles against r / R500c, the per-bin median ratio of the N_phot
proxy weight to the CNN weight and its core radius, AGN/ICM medians, per-band fractions, and the
per-cluster log histograms from which the population code pools medians (:mod:`.stats`).
Definitions and references are in :mod:`.radial` and :mod:`.pixels`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from models.attribution.errors import AttributionError
from models.attribution.pixels import agn_icm_masks, band_fractions, channel_counts
from models.attribution.radial import (
    CORE_THRESHOLD,
    N_RADIAL_BINS,
    R_MAX_R500C,
    binned_median,
    core_radius,
    proxy_weight,
    radial_bin_index,
    radial_edges,
    saliency_log_counts,
)
from models.attribution.stats import RATIO_GRID, SALIENCY_GRID, LogGrid

__all__ = ["ClusterSummary", "summarise_cluster", "GRADIENT_METHODS"]

#: Methods whose maps are derivatives df/dx (the chain rule to d ln M / d ln(N + 1) applies).
GRADIENT_METHODS = ("saliency", "smoothgrad")


@dataclass
class ClusterSummary:
    """Summaries of one cluster's attribution map (``|map|`` throughout).

    Profiles have one value per radial bin of r / R500c (NaN where a bin has no element).

    Attributes
    ----------
    bin_counts : ndarray of int
        Map elements (pixels x channels) per bin.
    profile_saliency : ndarray
        Mean ``|attribution|`` per element (dex per standardised input unit; dex for IG).
    profile_fraction : ndarray
        Mean normalised attribution ``|a| / sum(|a|)`` (sum over r <= r_max) per element, so
        ``sum(bin_counts * profile_fraction) = 1``.
    profile_proxy : ndarray
        Mean N_phot proxy weight ``(N + 1) / (N_phot alpha)`` per element.
    profile_proxy_fraction : ndarray
        Same normalisation as ``profile_fraction`` for the proxy weight.
    profile_saliency_ln : ndarray
        Mean CNN weight ``d ln M / d ln(N + 1)`` per element (gradient methods; NaN for IG).
    profile_ratio, profile_ratio_paper : ndarray
        Median over the bin's elements of ``proxy / CNN weight`` (unit-consistent) and of
        ``proxy / |df/dx|`` (the authors' convention); NaN for IG.
    r_core, r_core_paper : float
        :func:`~models.attribution.radial.core_radius` of the two ratio profiles, in R500c.
    median_agn, median_icm : float
        Median ``|attribution| > 0`` in AGN / ICM elements (NaN when the set is empty).
    n_agn, n_icm : int
        Elements in each set.
    band_fractions : ndarray, shape (C,)
        Share of the total ``|attribution|`` per input channel.
    ratio_hist, ratio_hist_paper : ndarray of uint16, shape (n_bins, RATIO_GRID.size) or None
        Log histograms of the two ratios per radial bin (gradient methods).
    agn_hist, icm_hist : ndarray of int64, shape (SALIENCY_GRID.size,)
        Log histograms of ``|attribution| > 0`` in AGN / ICM elements.
    band_hist : ndarray of int64, shape (C, SALIENCY_GRID.size)
        Log histograms of ``|attribution| > 0`` per channel.
    """

    bin_counts: np.ndarray
    profile_saliency: np.ndarray
    profile_fraction: np.ndarray
    profile_proxy: np.ndarray
    profile_proxy_fraction: np.ndarray
    profile_saliency_ln: np.ndarray
    profile_ratio: np.ndarray
    profile_ratio_paper: np.ndarray
    r_core: float
    r_core_paper: float
    median_agn: float
    median_icm: float
    n_agn: int
    n_icm: int
    band_fractions: np.ndarray
    ratio_hist: np.ndarray | None
    ratio_hist_paper: np.ndarray | None
    agn_hist: np.ndarray
    icm_hist: np.ndarray
    band_hist: np.ndarray


def _mean_per_bin(values: np.ndarray, b: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    sums = np.bincount(b, weights=values, minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _positive(values: np.ndarray) -> np.ndarray:
    return values[values > 0]


def summarise_cluster(
    attribution: np.ndarray,
    counts: np.ndarray,
    agn_counts: np.ndarray,
    icm_counts: np.ndarray,
    *,
    bands: Literal["single", "multi"],
    r500c_pix: float,
    alpha_nphot: float,
    count_scale: float,
    image_std: float,
    method: str = "saliency",
    masks: Literal["per_channel", "summed"] = "per_channel",
    n_bins: int = N_RADIAL_BINS,
    r_max: float = R_MAX_R500C,
    threshold: float = CORE_THRESHOLD,
    saliency_grid: LogGrid = SALIENCY_GRID,
    ratio_grid: LogGrid = RATIO_GRID,
) -> ClusterSummary:
    """Summarise one cluster's attribution map.

    Parameters
    ----------
    attribution : ndarray, shape (C, H, W)
        The network-input attribution (C = 1 single band, 3 multiband), same orientation as the
        count maps.
    counts, agn_counts, icm_counts : ndarray, shape (B, H, W)
        Raw photon counts of the cluster (AGN+ICM(+background) as fed to the network, AGN only,
        ICM only) in the B energy bands of the data; summed to one channel for ``"single"``.
    bands : {"single", "multi"}
        The network's channel mode (``Preprocessing.bands``).
    r500c_pix : float
        R500c in pixels (:func:`~models.attribution.radial.r500c_pixels`).
    alpha_nphot : float
        Slope of ln N_phot on ln M at the cluster's redshift.
    count_scale : float
        The fold's redshift count rescaling of this cluster (``Preprocessing.count_scale``).
    image_std : float
        The fold's input standardisation (``Preprocessing.image_std``).
    method : str
        Attribution method; the ratio profiles and core radii need a gradient method
        (:data:`GRADIENT_METHODS`) and are NaN otherwise.
    masks : {"per_channel", "summed"}
        AGN/ICM masks from each input channel's own counts, or from the band-summed counts
        repeated over the channels (the authors' multiband choice). Same for single band.
    n_bins, r_max, threshold : int, float, float
        Radial bins (100 over 3 R500c) and the core threshold (10), as the authors.
    saliency_grid, ratio_grid : LogGrid
        Histogram grids of the pooled medians.
    """
    a = np.abs(np.asarray(attribution, dtype=np.float64))
    if a.ndim != 3:
        raise AttributionError(f"attribution must be (C, H, W); got shape {a.shape}")
    cc = channel_counts(counts, bands).astype(np.float64)
    agn = channel_counts(agn_counts, bands)
    icm = channel_counts(icm_counts, bands)
    for name, arr in (("counts", cc), ("agn_counts", agn), ("icm_counts", icm)):
        if arr.shape != a.shape:
            raise AttributionError(
                f"{name} give channels of shape {arr.shape} but the attribution has {a.shape} "
                f"(bands={bands!r}); maps and counts must share shape and orientation"
            )
    bins = radial_bin_index(a.shape[-2:], r500c_pix, n_bins=n_bins, r_max=r_max)
    b_all = np.broadcast_to(bins, a.shape).ravel()
    inside = b_all >= 0
    b = b_all[inside]
    av = a.ravel()[inside]
    counts_bin = np.bincount(b, minlength=n_bins)[:n_bins]

    n_phot = float(np.asarray(counts, dtype=np.float64).sum())
    w_proxy = proxy_weight(cc, alpha_nphot, n_phot).ravel()[inside]

    def norm(v: np.ndarray) -> np.ndarray:
        total = v.sum()
        return v / total if total > 0 else np.full_like(v, np.nan)

    nan = np.full(n_bins, np.nan)
    prof_ln, ratio, ratio_paper = nan, nan, nan
    r_core = r_core_paper = float("nan")
    ratio_hist = ratio_hist_paper = None
    if method in GRADIENT_METHODS:
        w_cnn = saliency_log_counts(a, cc, count_scale, image_std).ravel()[inside]
        with np.errstate(divide="ignore"):
            q = w_proxy / w_cnn  # inf where the gradient is exactly 0
            q_paper = w_proxy / av
        prof_ln = _mean_per_bin(w_cnn, b, counts_bin, n_bins)
        ratio = binned_median(b, q, n_bins)
        ratio_paper = binned_median(b, q_paper, n_bins)
        centres = 0.5 * (radial_edges(n_bins, r_max)[1:] + radial_edges(n_bins, r_max)[:-1])
        r_core = core_radius(centres, ratio, threshold)
        r_core_paper = core_radius(centres, ratio_paper, threshold)
        ratio_hist = ratio_grid.histogram(q, b, n_bins).astype(np.uint16)
        ratio_hist_paper = ratio_grid.histogram(q_paper, b, n_bins).astype(np.uint16)

    if masks == "summed":
        agn, icm = agn.sum(axis=0, keepdims=True), icm.sum(axis=0, keepdims=True)
    elif masks != "per_channel":
        raise AttributionError(f"masks must be 'per_channel' or 'summed'; got {masks!r}")
    agn_mask, icm_mask = (np.broadcast_to(m, a.shape) for m in agn_icm_masks(agn, icm))
    s_agn, s_icm = _positive(a[agn_mask]), _positive(a[icm_mask])
    band_hist = np.stack([saliency_grid.histogram(_positive(a[c])) for c in range(a.shape[0])])
    return ClusterSummary(
        bin_counts=counts_bin,
        profile_saliency=_mean_per_bin(av, b, counts_bin, n_bins),
        profile_fraction=_mean_per_bin(norm(av), b, counts_bin, n_bins),
        profile_proxy=_mean_per_bin(w_proxy, b, counts_bin, n_bins),
        profile_proxy_fraction=_mean_per_bin(norm(w_proxy), b, counts_bin, n_bins),
        profile_saliency_ln=prof_ln,
        profile_ratio=ratio,
        profile_ratio_paper=ratio_paper,
        r_core=r_core,
        r_core_paper=r_core_paper,
        median_agn=float(np.median(s_agn)) if s_agn.size else float("nan"),
        median_icm=float(np.median(s_icm)) if s_icm.size else float("nan"),
        n_agn=int(agn_mask.sum()),
        n_icm=int(icm_mask.sum()),
        band_fractions=band_fractions(a),
        ratio_hist=ratio_hist,
        ratio_hist_paper=ratio_hist_paper,
        agn_hist=saliency_grid.histogram(s_agn),
        icm_hist=saliency_grid.histogram(s_icm),
        band_hist=band_hist,
    )
