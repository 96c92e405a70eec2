"""From an observation on the model grid to the array a network takes, with stated caveats.

Band handling (Ho et al. 2023): the single-band model takes all photons in 0.5-7 keV; the
multiband (and multimodal) models take [0.5, 1.2), [1.2, 2.0), [2.0, 7.0) keV. An observed band
goes to the target band that holds the largest share of its width, provided that share is at
least ``min_share`` (default 0.5); otherwise it is dropped. Every target band must receive at
least one observed band, else :class:`BandError`. The achieved edges are reported next to the
nominal ones, e.g. eFEDS' seven bands give 0.6-1.1 / 1.1-2.2 / 2.2-7.0 keV for the three
model bands (0.3-0.6 keV is dropped: only 1/3 of it lies above 0.5 keV), and a ROSAT PSPC
0.4-2.0 keV image can feed the single-band model only.

Exposure: each observed band is divided by its exposure and multiplied by the training
exposure (default 2000 s, the mocks' eRASS:8-like depth), then the bands are summed. This is
*not* an effective-area correction: ROSAT counts stay ROSAT counts. The output is at the stage
of the mocks' ``xray_total`` maps (counts per pixel); the run's own preprocessing (redshift
normalisation, log10(N+1), standardisation with training-fold statistics) is applied by the
predictor, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from survey.errors import BandError
from survey.images import GridImages

__all__ = ["TARGET_BANDS", "ModelKind", "plan_bands", "model_input", "domain_caveats"]

ModelKind = Literal["single", "multi", "multimodal"]
FillMode = Literal["auto", "radial", "zero", "background", "sky"]
TARGET_BANDS: dict[str, tuple[tuple[float, float], ...]] = {
    "single": ((0.5, 7.0),),
    "multi": ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0)),
    "multimodal": ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0)),
}
TRAINING_INSTRUMENT = "eROSITA (mock)"


def plan_bands(
    have: list[tuple[float, float]],
    kind: ModelKind,
    *,
    min_share: float = 0.5,
    instrument: str = "",
) -> tuple[list[list[int]], list[tuple[float, float]], list[str]]:
    """Assign observed bands to a model's target bands.

    Returns
    -------
    groups : list of list of int
        For each target band, the indices of the observed bands summed into it.
    achieved : list of tuple
        The achieved band edges [keV] (min lo, max hi of each group).
    notes : list of str
        Dropped bands and edge mismatches, in words.

    Raises
    ------
    BandError
        ``kind`` is unknown, or a target band receives no observed band.
    """
    if kind not in TARGET_BANDS:
        raise BandError(f"unknown model kind {kind!r}; choose one of {sorted(TARGET_BANDS)}")
    targets = TARGET_BANDS[kind]
    groups: list[list[int]] = [[] for _ in targets]
    notes: list[str] = []
    for i, (lo, hi) in enumerate(have):
        shares = [max(0.0, min(hi, t1) - max(lo, t0)) / (hi - lo) for t0, t1 in targets]
        best = int(np.argmax(shares))
        if shares[best] >= min_share:
            groups[best].append(i)
        else:
            notes.append(
                f"observed band {lo:g}-{hi:g} keV dropped: at most {shares[best]:.0%} of it lies "
                f"in one model band"
            )
    empty = [targets[k] for k, g in enumerate(groups) if not g]
    if empty:
        bands = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in have)
        raise BandError(
            f"{instrument or 'the image'} has band(s) {bands} keV, which cannot provide the "
            f"{kind} model's band(s) {[f'{a:g}-{b:g}' for a, b in empty]} keV "
            f"(needs {[f'{a:g}-{b:g}' for a, b in targets]}); "
            + ("use the single-band model" if kind != "single" else "no usable band")
        )
    achieved = [(min(have[i][0] for i in g), max(have[i][1] for i in g)) for g in groups]
    for (t0, t1), (a0, a1) in zip(targets, achieved, strict=True):
        if not (np.isclose(a0, t0) and np.isclose(a1, t1)):
            notes.append(f"model band {t0:g}-{t1:g} keV is fed by {a0:g}-{a1:g} keV")
    return groups, achieved, notes


def domain_caveats(instrument: str, *, area_corrected: bool = False) -> list[str]:
    """Caveats every prediction on observed data carries (the domain shift, in words).

    ``area_corrected``: the counts were multiplied by the effective-area and band ratio to the
    training instrument (the caveat then says so instead of warning of too few counts).
    """
    out = [
        f"observed data: the networks were trained on {TRAINING_INSTRUMENT} maps; real "
        f"{instrument} data differ in PSF, effective area, background and point sources, so the "
        "prediction is out of the training domain and its error is not the mock scatter"
    ]
    low = instrument.lower()
    if "rosat" in low or "pspc" in low:
        counts = (
            "the counts were scaled by the count-rate ratio for a thermal spectrum, which fixes "
            "the total but not the energy-dependent shape (no photons above ~2 keV, the PSF)"
            if area_corrected
            else "counts were rescaled in exposure time only, not in effective area, so the map "
            "has fewer counts than an eROSITA map of the same cluster"
        )
        out.append(
            "ROSAT PSPC is not eROSITA: 0.1-2.4 keV response (no photons above ~2 keV), several "
            f"times less effective area and a broader PSF; {counts}"
        )
    elif "erosita" not in low:
        out.append(f"{instrument} is not eROSITA: its response differs from the training maps")
    return out


def _radial_fill(img: np.ndarray, valid: np.ndarray, sky: float, width: float = 2.0) -> np.ndarray:
    """Mean of the valid pixels in the same radial bin (``width`` pixels) about the centre."""
    n = img.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    rbin = (np.hypot(xx - (n - 1) / 2, yy - (n - 1) / 2) / width).astype(int)
    nb = int(rbin.max()) + 1
    tot = np.bincount(rbin[valid], weights=img[valid], minlength=nb)
    num = np.bincount(rbin[valid], minlength=nb)
    prof = np.where(num > 0, tot / np.maximum(num, 1), sky)
    return prof[rbin]


def _fill(
    grid: GridImages, scaled: np.ndarray, bg_scaled: np.ndarray | None, mode: FillMode
) -> tuple[np.ndarray, str]:
    """Per-band fill arrays (C, n, n) for masked pixels, and the mode used."""
    valid = ~grid.mask
    n = scaled.shape[1]
    if mode == "auto":
        mode = "radial"
    if mode == "zero" or not valid.any():
        return np.zeros_like(scaled), "zero"
    if mode == "background":
        if bg_scaled is None:
            raise BandError(
                "fill='background' needs a background map; use 'radial', 'sky' or 'zero'"
            )
        levels = [float(np.median(b[valid])) for b in bg_scaled]
        return np.stack([np.full((n, n), v) for v in levels]), "background"
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - (n - 1) / 2, yy - (n - 1) / 2)
    annulus = valid & (r > 0.7 * n / 2)
    annulus = annulus if annulus.any() else valid
    skies = [float(np.mean(c[annulus])) for c in scaled]
    if mode == "sky":
        return np.stack([np.full((n, n), v) for v in skies]), "sky"
    return np.stack(
        [_radial_fill(c, valid, s) for c, s in zip(scaled, skies, strict=True)]
    ), "radial"


def model_input(
    grid: GridImages,
    kind: ModelKind = "single",
    *,
    training_exposure_s: float = 2000.0,
    background: Literal["keep", "subtract"] = "keep",
    fill: FillMode = "auto",
    min_share: float = 0.5,
    count_rate_scale: float | Sequence[float] = 1.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Build a network input ``(C, npix, npix)`` [counts per pixel at the training exposure].

    Parameters
    ----------
    grid : GridImages
        Reprojected observation (native bands).
    kind : {'single', 'multi', 'multimodal'}
        Model kind: 1 band (0.5-7 keV) or 3 bands.
    training_exposure_s : float ['time']
        Exposure the training maps were made with [s].
    background : {'keep', 'subtract'}
        Keep the background (the mocks include background) or subtract the background model
        (negative results clipped at 0).
    fill : {'auto', 'radial', 'zero', 'background', 'sky'}
        Value given to masked pixels: 'radial' (= 'auto') the mean of the unmasked pixels at the
        same distance from the centre (2-pixel rings; fills point-source holes with the local
        cluster level and the off-field corners with the outer level), 'zero', 'background'
        (median background model level) or 'sky' (mean of unmasked pixels beyond 0.7 of the
        half-width).
    min_share : float
        Smallest share of an observed band inside a model band for it to be used.
    count_rate_scale : float or sequence of float
        Extra factor on the counts for the effective-area and band difference to the training
        instrument, one for all model bands or one per model band (e.g.
        :func:`survey.responses.band_count_rate_ratios`; ~8 for ROSAT PSPC 0.4-2 keV ->
        eROSITA 0.5-7 keV at kT = 5 keV). Default 1: no area correction.

    Returns
    -------
    image : ndarray, float32, shape (C, npix, npix)
    meta : dict
        instrument, bands (nominal and achieved), exposure scaling, masked fraction, fill,
        caveats (a list of sentences; always includes the domain shift).
    """
    if training_exposure_s <= 0:
        raise ValueError(f"training_exposure_s must be > 0, got {training_exposure_s}")
    scales = np.atleast_1d(np.asarray(count_rate_scale, dtype=float))
    if not np.all(scales > 0) or not np.all(np.isfinite(scales)):
        raise ValueError(f"count_rate_scale must be finite and > 0, got {count_rate_scale}")
    if background == "subtract" and grid.background is None:
        raise BandError("background='subtract' needs a background map; this image set has none")
    groups, achieved, band_notes = plan_bands(
        grid.bands_kev, kind, min_share=min_share, instrument=grid.instrument
    )
    if scales.size not in (1, len(groups)):
        raise ValueError(
            f"count_rate_scale has {scales.size} values; the {kind} model has {len(groups)} bands"
        )
    scales = np.broadcast_to(scales, (len(groups),))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_s = np.where(grid.exposure > 0, training_exposure_s / grid.exposure, 0.0)
    counts = grid.counts
    if background == "subtract":
        counts = np.clip(counts - grid.background, 0.0, None)  # type: ignore[operator]
    scaled_native = counts * per_s
    bg_native = None if grid.background is None else grid.background * per_s
    scaled = np.stack(
        [k * scaled_native[g].sum(axis=0) for k, g in zip(scales, groups, strict=True)]
    )
    bg_scaled = (
        None
        if bg_native is None
        else np.stack([k * bg_native[g].sum(axis=0) for k, g in zip(scales, groups, strict=True)])
    )
    filler, fill_used = _fill(grid, scaled, bg_scaled, fill)
    image = np.where(grid.mask[None], filler, scaled).astype(np.float32)

    valid = ~grid.mask
    exp_med = [float(np.median(grid.exposure[g][:, valid])) if valid.any() else 0.0 for g in groups]
    caveats = domain_caveats(grid.instrument, area_corrected=bool(np.any(scales != 1.0)))
    caveats += band_notes
    if grid.masked_fraction > 0:
        caveats.append(
            f"{grid.masked_fraction:.1%} of the pixels are outside the footprint or unexposed "
            f"and were filled ({fill_used} fill)"
        )
    factor = [training_exposure_s / e if e > 0 else float("nan") for e in exp_med]
    caveats.append(
        "counts rescaled to the training exposure by x"
        + "/".join(f"{f:.3g}" for f in factor)
        + f" (median observed exposure {'/'.join(f'{e:.0f}' for e in exp_med)} s); Poisson noise "
        "of the observed depth is kept"
    )
    if np.any(scales != 1.0):
        caveats.append(
            "counts multiplied by " + "/".join(f"{k:.3g}" for k in scales) + " for the "
            "effective-area and band difference to the training instrument (spectrum-dependent; "
            "see survey.responses)"
        )
    else:
        caveats.append("no effective-area correction applied (count_rate_scale = 1)")
    meta: dict[str, Any] = {
        "kind": kind,
        "instrument": grid.instrument,
        "input_domain": "observed",
        "bands_kev_nominal": [list(t) for t in TARGET_BANDS[kind]],
        "bands_kev_achieved": [list(a) for a in achieved],
        "band_groups": groups,
        "training_exposure_s": training_exposure_s,
        "median_exposure_s": exp_med,
        "exposure_scale": factor,
        "count_rate_scale": [float(k) for k in scales] if scales.size > 1 else float(scales[0]),
        "background": background,
        "fill": fill_used,
        "masked_fraction": grid.masked_fraction,
        "total_counts": [float(x) for x in image.sum(axis=(1, 2))],
        "pixel_scale_mpc_h": grid.pixel_scale_mpc_h,
        "pixel_scale_arcsec": grid.pixel_scale_arcsec,
        "redshift": grid.redshift,
        "centre_deg": [grid.ra_deg, grid.dec_deg],
        "preprocessing_left": "redshift normalisation, log10(N+1), training-fold standardisation",
        "caveats": caveats,
    }
    return image, meta
