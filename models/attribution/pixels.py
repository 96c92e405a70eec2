"""AGN and ICM pixels, masked saliency statistics and per-band saliency fractions.

Ho et al. (2023, Sect. 5.2 and their notebook, "AGN attention"): a pixel is an *AGN pixel* when
the AGN-only map has more counts than the ICM-only map, an *ICM pixel* when the reverse; ties
(most often 0 = 0) are dropped. The medians of the saliency > 0 in each set, pooled over all
clusters, were 10^-3.85 (AGN) and 10^-3.53 (ICM) for the single-band CNN, 10^-3.91 and 10^-3.77
for the multiband CNN (which compared every band's saliency with the band-summed masks repeated
over bands).

Here masks are built from the counts *as the network's input channels see them*
(:func:`~models.preprocessing.select_bands`): band-summed for the single-band CNN (as the
authors), per band for the multiband CNN (a band-``b`` input element is an AGN element when the
AGN counts in band ``b`` exceed the ICM counts there). Masks and maps must have the same shape and
orientation; the authors built the masks on unrotated images and applied them to rotated saliency
maps (flaw 3 in ``science.md``), which :func:`agn_icm_masks` cannot do: it refuses maps of
different shapes, and the population code passes masks and maps of the same array orientation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from models.attribution.errors import AttributionError
from models.preprocessing import select_bands

__all__ = [
    "channel_counts",
    "agn_icm_masks",
    "masked_positive",
    "masked_median",
    "band_fractions",
]


def channel_counts(counts: np.ndarray, bands: Literal["single", "multi"]) -> np.ndarray:
    """Return the counts per network input channel: (..., 3, H, W) -> (..., 1, H, W) summed, or unchanged."""
    c = np.asarray(counts)
    if c.ndim == 3:
        return np.asarray(select_bands(c[None], bands))[0]
    return np.asarray(select_bands(c, bands))


def agn_icm_masks(agn: np.ndarray, icm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of AGN elements (AGN > ICM) and ICM elements (ICM > AGN); ties in neither.

    Parameters
    ----------
    agn, icm : ndarray, same shape
        AGN-only and ICM-only photon counts of the same pixels (same orientation).

    Returns
    -------
    agn_mask, icm_mask : ndarray of bool
        Disjoint masks with the input shape.
    """
    a, i = np.asarray(agn), np.asarray(icm)
    if a.shape != i.shape:
        raise AttributionError(f"AGN counts {a.shape} and ICM counts {i.shape} differ in shape")
    return a > i, i > a


def masked_positive(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``|values|`` at ``mask`` that are > 0 (the authors kept saliency > 0), flattened."""
    v, m = np.abs(np.asarray(values)), np.asarray(mask, dtype=bool)
    if v.shape != m.shape:
        raise AttributionError(
            f"map {v.shape} and mask {m.shape} differ in shape; masks must be built on maps of "
            "the same orientation (flaw 3 in science.md)"
        )
    out = v[m]
    return out[out > 0]


def masked_median(values: np.ndarray, mask: np.ndarray) -> float:
    """Median of ``|values| > 0`` inside ``mask``; NaN when none."""
    v = masked_positive(values, mask)
    return float(np.median(v)) if v.size else float("nan")


def band_fractions(attribution: np.ndarray) -> np.ndarray:
    """Fraction of the total ``|attribution|`` carried by each channel of a (C, H, W) map."""
    a = np.abs(np.asarray(attribution, dtype=np.float64))
    if a.ndim != 3:
        raise AttributionError(f"band_fractions needs a (C, H, W) map; got shape {a.shape}")
    per = a.reshape(a.shape[0], -1).sum(axis=1)
    total = per.sum()
    return per / total if total > 0 else np.full(a.shape[0], np.nan)
