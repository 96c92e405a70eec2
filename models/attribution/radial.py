"""Radial profiles of attribution maps, the N_phot proxy weight and the core radius.

Geometry (``models.data`` conventions): a map of ``H x W`` pixels spans +-2.3 h^-1 Mpc
*comoving* around the cluster centre (Ho et al. 2023, Sect. 2.2), pixel ``(i, j)`` has its centre
at ``(i + 1/2 - H/2, j + 1/2 - W/2)`` pixels from the map centre. The truth table gives R500c in
h^-1 Mpc *proper*, so R500c in pixels is ``r500c (1 + z) / (2 * 2.3 / H)`` (:func:`r500c_pixels`).
Radii are in units of R500c itself: the authors' notebook scaled by an R500c twice too large in
pixels for the N_phot,500c proxy (flaw 4 in ``science.md``); nothing here does that.

Weights compared per map element (pixel of one input channel), both as ``d ln M / d ln(N + 1)``:

- N_phot proxy (the authors' notebook, "Test cluster cores"): ``ln M = (ln N_phot - pi) / alpha``
  gives ``w_proxy = (N_pix + 1) / (N_phot alpha(z))`` with ``N_phot`` the map's total counts and
  ``alpha`` the slope of ``ln N_phot`` on ``ln M`` at the cluster's redshift.
- CNN: the input is ``x = (log10(s N + 1) - mu) / sigma`` (``s`` the redshift count rescaling,
  ``mu, sigma`` the standardisation), so by the chain rule
  ``d ln M / d ln(N + 1) = |df/dx| s (N + 1) / (sigma (s N + 1))`` with ``f = log10 M``
  (:func:`saliency_log_counts`). The authors divided ``w_proxy`` by the raw ``|df/dx|`` instead;
  that "paper convention" ratio is kept alongside for comparison with their 0.285 R500c.

The core radius is where the median ratio ``w_proxy / w_CNN`` per radial bin first falls through
a threshold (10) walking outwards (:func:`core_radius`): inside it the CNN weights the map at least
ten times less than the N_phot proxy does, i.e. it behaves like core excision.
"""

from __future__ import annotations

import numpy as np

from models.attribution.errors import AttributionError

__all__ = [
    "HALF_WIDTH_MPC_H",
    "N_RADIAL_BINS",
    "R_MAX_R500C",
    "CORE_THRESHOLD",
    "r500c_pixels",
    "pixel_radius",
    "radial_edges",
    "radial_bin_index",
    "radial_profile",
    "binned_median",
    "proxy_weight",
    "saliency_log_counts",
    "core_radius",
]

#: Half side of the maps, h^-1 Mpc comoving (Ho et al. 2023).
HALF_WIDTH_MPC_H = 2.3
#: Radial bins and their outer edge in R500c (the authors' notebook: 100 bins, r <= 3 R500c).
N_RADIAL_BINS = 100
R_MAX_R500C = 3.0
#: Proxy / CNN weight ratio that defines the core radius (Ho et al. 2023: 10).
CORE_THRESHOLD = 10.0


def r500c_pixels(
    r500c_mpc_h_proper: np.ndarray | float,
    redshift: np.ndarray | float,
    *,
    n_pixels: int = 128,
    half_width_mpc_h: float = HALF_WIDTH_MPC_H,
) -> np.ndarray:
    """R500c in map pixels.

    Parameters
    ----------
    r500c_mpc_h_proper : float or ndarray
        R500c in h^-1 Mpc, proper (physical) length.
    redshift : float or ndarray
        Cluster redshift (proper -> comoving: times ``1 + z``).
    n_pixels : int
        Pixels along a side of the map (paper 128).
    half_width_mpc_h : float
        Half side of the map in h^-1 Mpc comoving (paper 2.3).

    Returns
    -------
    ndarray
        ``r500c (1 + z) / (2 half_width / n_pixels)`` pixels.
    """
    pix = 2.0 * half_width_mpc_h / n_pixels
    return np.asarray(r500c_mpc_h_proper, np.float64) * (1.0 + np.asarray(redshift)) / pix


def pixel_radius(shape: tuple[int, int]) -> np.ndarray:
    """Distance of each pixel centre from the map centre, in pixels, shape ``shape``."""
    h, w = shape
    di = np.arange(h) + 0.5 - h / 2.0
    dj = np.arange(w) + 0.5 - w / 2.0
    return np.hypot(di[:, None], dj[None, :])


def radial_edges(n_bins: int = N_RADIAL_BINS, r_max: float = R_MAX_R500C) -> np.ndarray:
    """Edges of ``n_bins`` equal bins of r / R500c over ``[0, r_max]``."""
    if n_bins < 1 or not r_max > 0:
        raise AttributionError(f"need n_bins >= 1 and r_max > 0; got {n_bins}, {r_max}")
    return np.linspace(0.0, r_max, n_bins + 1)


def radial_bin_index(
    shape: tuple[int, int],
    r500c_pix: float,
    *,
    n_bins: int = N_RADIAL_BINS,
    r_max: float = R_MAX_R500C,
) -> np.ndarray:
    """Radial bin of every pixel (int64, ``shape``), -1 beyond ``r_max`` R500c."""
    if not (np.isfinite(r500c_pix) and r500c_pix > 0):
        raise AttributionError(f"r500c_pix must be finite and > 0; got {r500c_pix}")
    x = pixel_radius(shape) / float(r500c_pix)
    idx = np.floor(x / (r_max / n_bins)).astype(np.int64)
    idx[x >= r_max] = -1
    return idx


def _flat(values: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast a (H, W) bin map over (C, H, W) values; keep elements inside r_max."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[-2:] != bins.shape:
        raise AttributionError(f"map shape {v.shape} does not end with bin map {bins.shape}")
    b = np.broadcast_to(bins, v.shape).ravel()
    keep = b >= 0
    return v.ravel()[keep], b[keep]


def binned_median(bin_index: np.ndarray, values: np.ndarray, n_bins: int) -> np.ndarray:
    """Median of ``values`` in each bin ``0..n_bins-1`` (NaN where empty); ``inf`` sorts last."""
    b = np.asarray(bin_index, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    order = np.lexsort((v, b))
    v, b = v[order], b[order]
    counts = np.bincount(b, minlength=n_bins)[:n_bins]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n_bins, np.nan)
    ok = counts > 0
    lo = starts[ok] + (counts[ok] - 1) // 2
    hi = starts[ok] + counts[ok] // 2
    with np.errstate(invalid="ignore"):  # inf + inf is fine, inf - inf does not occur
        out[ok] = 0.5 * (v[lo] + v[hi])
    return out


def radial_profile(
    values: np.ndarray,
    r500c_pix: float,
    *,
    n_bins: int = N_RADIAL_BINS,
    r_max: float = R_MAX_R500C,
    statistic: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    """Profile of a map (H, W) or per-channel maps (C, H, W) against r / R500c.

    Every element (pixel of every channel) inside ``r_max`` R500c enters the bin of its pixel's
    radius.

    Parameters
    ----------
    values : ndarray, shape (H, W) or (C, H, W)
        Map values.
    r500c_pix : float
        R500c in pixels (:func:`r500c_pixels`).
    n_bins, r_max : int, float
        Bins of r / R500c (:func:`radial_edges`).
    statistic : {"mean", "median", "sum"}
        Statistic per bin.

    Returns
    -------
    profile : ndarray, shape (n_bins,)
        Statistic per bin; NaN for empty bins (0 for ``"sum"``).
    counts : ndarray of int, shape (n_bins,)
        Elements per bin.
    """
    v = np.asarray(values)
    bins = radial_bin_index(v.shape[-2:], r500c_pix, n_bins=n_bins, r_max=r_max)
    vals, b = _flat(v, bins)
    counts = np.bincount(b, minlength=n_bins)[:n_bins]
    if statistic == "median":
        return binned_median(b, vals, n_bins), counts
    sums = np.bincount(b, weights=vals, minlength=n_bins)[:n_bins]
    if statistic == "sum":
        return sums, counts
    if statistic == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), counts
    raise AttributionError(f"statistic must be 'mean', 'median' or 'sum'; got {statistic!r}")


def proxy_weight(counts: np.ndarray, alpha_nphot: float, n_phot: float | None = None) -> np.ndarray:
    """N_phot proxy weight ``(N_pix + 1) / (N_phot alpha)`` of every map element.

    Parameters
    ----------
    counts : ndarray, shape (..., H, W)
        Raw photon counts of the elements (as the network's channels see them).
    alpha_nphot : float
        Slope ``d ln N_phot / d ln M`` at the cluster's redshift (dimensionless).
    n_phot : float, optional
        Total counts of the cluster (default ``counts.sum()``).

    Returns
    -------
    ndarray
        ``d ln M / d ln(N_pix + 1)`` of the N_phot estimator, same shape as ``counts``.
    """
    c = np.asarray(counts, dtype=np.float64)
    total = float(c.sum()) if n_phot is None else float(n_phot)
    if not (total > 0 and np.isfinite(alpha_nphot) and alpha_nphot > 0):
        raise AttributionError(
            f"proxy weight needs n_phot > 0 and alpha_nphot > 0; got {total}, {alpha_nphot}"
        )
    return (c + 1.0) / (total * float(alpha_nphot))


def saliency_log_counts(
    saliency: np.ndarray, counts: np.ndarray, count_scale: float, image_std: float
) -> np.ndarray:
    """Convert ``|d log10 M / dx|`` to ``d ln M / d ln(N + 1)`` by the chain rule.

    ``x = (log10(s N + 1) - mu) / sigma`` gives ``dx / d ln(N + 1) = s (N + 1) /
    (ln 10 sigma (s N + 1))`` and ``d ln M = ln 10 d log10 M``, so the factors of ``ln 10``
    cancel.

    Parameters
    ----------
    saliency : ndarray
        ``|df/dx|`` (dex per standardised input unit), same shape as ``counts``.
    counts : ndarray
        Raw counts of the elements.
    count_scale : float
        Redshift rescaling ``s`` (:meth:`~models.preprocessing.Preprocessing.count_scale`).
    image_std : float
        Standardisation ``sigma`` of the fold.
    """
    n = np.asarray(counts, dtype=np.float64)
    s = float(count_scale)
    return np.abs(saliency) * s * (n + 1.0) / (float(image_std) * (s * n + 1.0))


def core_radius(centres: np.ndarray, ratio: np.ndarray, threshold: float = CORE_THRESHOLD) -> float:
    """First radius where ``ratio`` falls through ``threshold`` walking outwards.

    The crossing is interpolated linearly in ``log10(ratio)`` between the two bracketing bins
    (non-finite or empty bins are skipped; ``inf`` counts as above the threshold).

    Parameters
    ----------
    centres : ndarray
        Bin centres (r / R500c), increasing.
    ratio : ndarray
        Proxy / CNN weight ratio per bin.
    threshold : float
        Ratio defining the core (Ho et al. 2023: 10).

    Returns
    -------
    float
        Crossing radius in units of ``centres``; NaN when the ratio never starts above the
        threshold and falls below it (no down-weighted core, or no crossing inside the range).
    """
    r = np.asarray(centres, dtype=np.float64)
    q = np.asarray(ratio, dtype=np.float64)
    ok = ~np.isnan(q) & (q > 0)
    r, q = r[ok], q[ok]
    above = q > threshold
    if r.size < 2 or not above[0]:
        return float("nan")
    below = np.flatnonzero(~above)
    if below.size == 0:
        return float("nan")
    k = int(below[0])
    q0, q1 = q[k - 1], q[k]
    if not np.isfinite(q0):  # the log-linear interpolation's limit for q0 -> inf
        return float(r[k])
    l0, l1, lt = np.log10(q0), np.log10(q1), np.log10(threshold)
    if l0 == l1:
        return float(r[k])
    return float(r[k - 1] + (l0 - lt) / (l0 - l1) * (r[k] - r[k - 1]))
