"""Real X-ray images (counts + exposure (+ background)) reprojected onto the models' grid.

The models see 128 x 128 pixels over +-2.3 h^-1 Mpc *comoving* around the cluster centre
(Ho et al. 2023, Sect. 2.2): a pixel is 4.6/128 = 0.0359 h^-1 Mpc comoving, i.e. an angle of
0.0359 / D_M(z) rad with D_M the comoving transverse distance in h^-1 Mpc (Hogg 1999, eq. 16).
The output grid is a TAN projection centred on the cluster, north up, east left; arrays are
indexed ``[band, y, x]`` in FITS order (row 0 is the southern edge).

Reprojection uses exact spherical-polygon overlaps (``reproject.reproject_exact``):

* counts and background [counts/pixel] are extensive: they are converted to counts per unit
  solid angle, reprojected, and multiplied by the output pixel's solid angle, so the counts in
  the covered area are preserved (to < 1e-3 for fields of a few degrees, where the projection's
  pixel-area variation is negligible; tested);
* exposure [s] is intensive: the area-weighted mean of the input pixels.

Output pixels not fully covered by the input image (footprint < ``min_footprint``) or whose
exposure is below ``min_exposure_fraction`` of the field median are *masked* and flagged; a
point-source mask (1 = use) zeroes counts and exposure of excluded input pixels first, so the
count rate of a partly masked output pixel stays unbiased.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_area

from survey.cosmology import CosmologySpec, comoving_transverse_mpc_h
from survey.errors import CatalogueReadError, ImageError
from survey.files import check_fits_complete
from survey.specs import ImageSetSpec

__all__ = [
    "NPIX",
    "HALF_WIDTH_MPC_H",
    "BandImage",
    "GridImages",
    "read_fits_image",
    "load_band_images",
    "model_grid_wcs",
    "reproject_to_grid",
]

NPIX = 128
HALF_WIDTH_MPC_H = 2.3  # Ho et al. 2023: +-2.3 h^-1 Mpc comoving


@dataclass
class BandImage:
    """One energy band of an observation on its native pixel grid.

    Attributes
    ----------
    band_kev : tuple of float
        Energy band [keV].
    counts : ndarray
        Counts per pixel.
    wcs : astropy.wcs.WCS
        Celestial WCS of ``counts`` (shared by exposure, background and mask).
    exposure : ndarray or float
        Exposure [s] per pixel (or a constant).
    background : ndarray or None
        Background model [counts/pixel].
    source_mask : ndarray or None
        1 = use, 0 = excluded (point sources, bad areas).
    files : dict of str to str
        Role -> file name, for provenance.
    """

    band_kev: tuple[float, float]
    counts: np.ndarray
    wcs: WCS
    exposure: np.ndarray | float
    background: np.ndarray | None = None
    source_mask: np.ndarray | None = None
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class GridImages:
    """An observation reprojected onto the model grid, band by band (native bands).

    ``counts`` [counts/pixel], ``exposure`` [s] and ``background`` [counts/pixel] have shape
    ``(B, npix, npix)``; ``mask`` (``npix, npix``) is True where a pixel is out of the footprint
    or unexposed.
    """

    counts: np.ndarray
    exposure: np.ndarray
    background: np.ndarray | None
    mask: np.ndarray
    bands_kev: list[tuple[float, float]]
    instrument: str
    ra_deg: float
    dec_deg: float
    redshift: float
    pixel_scale_mpc_h: float
    pixel_scale_arcsec: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def masked_fraction(self) -> float:
        """Fraction of grid pixels masked."""
        return float(self.mask.mean())

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for storage (npz)."""
        out = {
            "counts": self.counts.astype(np.float32),
            "exposure": self.exposure.astype(np.float32),
            "mask": self.mask.astype(np.uint8),
            "bands_kev": np.asarray(self.bands_kev, dtype=np.float64),
        }
        if self.background is not None:
            out["background"] = self.background.astype(np.float32)
        return out


def read_fits_image(path: Path, hdu: int = 0, *, role: str = "counts") -> tuple[np.ndarray, WCS]:
    """Read a 2-D image and its celestial WCS.

    Raises
    ------
    ImageError
        Not a FITS file, truncated, no 2-D data in the HDU, or no celestial WCS.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file ({role} image)")
    try:
        n_hdu = check_fits_complete(path)
    except CatalogueReadError as exc:
        raise ImageError(f"{role} image {exc}") from exc
    if hdu >= n_hdu:
        raise ImageError(f"{path}: has {n_hdu} HDUs, the spec asks for HDU {hdu}")
    with fits.open(path, memmap=False) as hdul:
        data, header = hdul[hdu].data, hdul[hdu].header
        if data is None or data.ndim != 2:
            shape = None if data is None else data.shape
            raise ImageError(f"{path}: HDU {hdu} holds no 2-D image (shape {shape})")
        data = np.asarray(data, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    if not wcs.has_celestial or not all(t.strip() for t in wcs.wcs.ctype):
        raise ImageError(
            f"{path}: {role} image has no celestial WCS (CTYPE1/CTYPE2 = {list(wcs.wcs.ctype)}); "
            "an image needs RA/Dec axes to be placed on the model grid"
        )
    return data, wcs.celestial


def _same_grid(a: WCS, b: WCS, shape_a: tuple, shape_b: tuple) -> bool:
    if shape_a != shape_b:
        return False
    pa = a.pixel_to_world_values([0, shape_a[1] - 1], [0, shape_a[0] - 1])
    pb = b.pixel_to_world_values([0, shape_b[1] - 1], [0, shape_b[0] - 1])
    return bool(np.allclose(pa, pb, atol=1e-6))


def load_band_images(
    spec: ImageSetSpec, base: Path, *, source: str = "image set", allow_absolute: bool = False
) -> list[BandImage]:
    """Read every band of an image set; paths are relative to ``base`` and confined to it.

    Parameters
    ----------
    spec
        The image set.
    base
        Folder its paths are relative to; no file outside it is opened
        (:func:`survey.specs.confined_path`).
    source
        The manifest, for messages.
    allow_absolute
        Accept absolute entries inside ``base`` (specs a trusted caller built, never a YAML).

    Raises
    ------
    SpecError
        A path lies outside ``base`` (nothing is opened).
    ImageError
        A file is unreadable or has no WCS, the exposure/background/mask grid differs from the
        counts grid, or counts are negative.
    """
    paths = spec.resolve_files(Path(base), source=source, allow_absolute=allow_absolute)
    mask = None
    if spec.mask:
        mask, _ = read_fits_image(paths[spec.mask], role="mask")
    out = []
    for band in spec.bands:
        counts, wcs = read_fits_image(paths[band.counts], band.hdu, role="counts")
        files = {"counts": band.counts}
        if np.any(counts[np.isfinite(counts)] < 0):
            raise ImageError(f"{paths[band.counts]}: counts image has negative pixels")
        exposure: np.ndarray | float
        if band.exposure:
            exposure, ewcs = read_fits_image(paths[band.exposure], band.hdu, role="exposure")
            if not _same_grid(wcs, ewcs, counts.shape, exposure.shape):
                raise ImageError(
                    f"{paths[band.exposure]}: exposure map grid differs from the counts image "
                    f"{band.counts} (shape {exposure.shape} vs {counts.shape}); reproject it first"
                )
            files["exposure"] = band.exposure
        else:
            exposure = float(band.exposure_s)  # type: ignore[arg-type]
        background = None
        if band.background:
            background, bwcs = read_fits_image(paths[band.background], band.hdu, role="background")
            if not _same_grid(wcs, bwcs, counts.shape, background.shape):
                raise ImageError(
                    f"{paths[band.background]}: background grid differs from {band.counts}"
                )
            files["background"] = band.background
        if mask is not None:
            if mask.shape != counts.shape:
                raise ImageError(f"{paths[spec.mask]}: mask shape {mask.shape} != {counts.shape}")  # type: ignore[index]
            files["mask"] = spec.mask  # type: ignore[assignment]
        out.append(BandImage(band.band_kev, counts, wcs, exposure, background, mask, files))
    return out


def model_grid_wcs(
    ra_deg: float,
    dec_deg: float,
    z: float,
    cosmology: CosmologySpec,
    *,
    npix: int = NPIX,
    half_width_mpc_h: float = HALF_WIDTH_MPC_H,
) -> tuple[WCS, float, float]:
    """WCS of the model grid around a cluster.

    Parameters
    ----------
    ra_deg, dec_deg : float ['angle']
        Centre (ICRS) [deg].
    z : float ['redshift']
        Cluster redshift.
    cosmology : CosmologySpec
        Cosmology for D_M(z).
    npix : int
        Pixels per side.
    half_width_mpc_h : float ['length']
        Half-width of the field, comoving [h^-1 Mpc].

    Returns
    -------
    wcs : WCS
        TAN projection, north up, east left.
    pixel_mpc_h : float ['length']
        Pixel side, comoving [h^-1 Mpc].
    pixel_deg : float ['angle']
        Pixel side [deg].
    """
    if not z > 0:
        raise ImageError(f"cluster redshift must be > 0 to place it on the model grid, got {z}")
    pixel_mpc_h = 2.0 * half_width_mpc_h / npix
    pixel_deg = float(np.degrees(pixel_mpc_h / comoving_transverse_mpc_h(z, cosmology)))
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra_deg, dec_deg]
    w.wcs.crpix = [(npix + 1) / 2.0, (npix + 1) / 2.0]
    w.wcs.cdelt = [-pixel_deg, pixel_deg]
    w.wcs.radesys = "ICRS"
    w.pixel_shape = (npix, npix)
    return w, pixel_mpc_h, pixel_deg


def _reproject(
    values: np.ndarray, wcs_in: WCS, wcs_out: WCS, npix: int
) -> tuple[np.ndarray, np.ndarray]:
    from reproject import reproject_exact

    out, footprint = reproject_exact((values, wcs_in), wcs_out, shape_out=(npix, npix))
    return np.nan_to_num(out, nan=0.0), np.nan_to_num(footprint, nan=0.0)


def reproject_to_grid(
    bands: list[BandImage],
    ra_deg: float,
    dec_deg: float,
    z: float,
    cosmology: CosmologySpec,
    *,
    instrument: str,
    npix: int = NPIX,
    half_width_mpc_h: float = HALF_WIDTH_MPC_H,
    min_footprint: float = 0.99,
    min_exposure_fraction: float = 0.1,
) -> GridImages:
    """Reproject every band onto the model grid (counts preserved, exposure averaged).

    Raises
    ------
    ImageError
        The model field does not overlap the image at all.
    """
    wcs_out, pixel_mpc_h, pixel_deg = model_grid_wcs(
        ra_deg, dec_deg, z, cosmology, npix=npix, half_width_mpc_h=half_width_mpc_h
    )
    area_out = proj_plane_pixel_area(wcs_out)
    counts, exposure, background, masks = [], [], [], []
    for b in bands:
        use = np.ones(b.counts.shape) if b.source_mask is None else (b.source_mask > 0) * 1.0
        finite = np.isfinite(b.counts)
        exp_in = np.broadcast_to(np.asarray(b.exposure, dtype=float), b.counts.shape)
        exp_in = np.where(finite & np.isfinite(exp_in), exp_in, 0.0) * use
        area_in = proj_plane_pixel_area(b.wcs)
        c_in = np.where(finite, b.counts, 0.0) * use
        c, fp = _reproject(c_in / area_in, b.wcs, wcs_out, npix)
        e, _ = _reproject(exp_in, b.wcs, wcs_out, npix)
        counts.append(c * area_out)
        exposure.append(e)
        if b.background is not None:
            bg, _ = _reproject(np.nan_to_num(b.background) * use / area_in, b.wcs, wcs_out, npix)
            background.append(np.clip(bg * area_out, 0.0, None))
        positive = e[(fp >= min_footprint) & (e > 0)]
        if positive.size == 0:
            raise ImageError(
                f"the {npix}x{npix} model field around ({ra_deg:.4f}, {dec_deg:.4f}) does not "
                f"overlap the exposed part of the {b.band_kev} keV image {b.files.get('counts')}"
            )
        floor = min_exposure_fraction * float(np.median(positive))
        masks.append((fp < min_footprint) | (e <= floor))
    if background and len(background) != len(bands):
        raise ImageError("give a background map for every band or for none")
    mask = np.any(masks, axis=0)
    grid = GridImages(
        counts=np.stack(counts),
        exposure=np.stack(exposure),
        background=np.stack(background) if background else None,
        mask=mask,
        bands_kev=[tuple(map(float, b.band_kev)) for b in bands],  # type: ignore[misc]
        instrument=instrument,
        ra_deg=float(ra_deg),
        dec_deg=float(dec_deg),
        redshift=float(z),
        pixel_scale_mpc_h=pixel_mpc_h,
        pixel_scale_arcsec=pixel_deg * 3600.0,
    )
    grid.meta = {
        "grid": f"{npix}x{npix} TAN, +-{half_width_mpc_h} h^-1 Mpc comoving",
        "wcs": dict(wcs_out.to_header()),
        "cosmology": cosmology.record(),
        "reprojection": "reproject_exact; counts/background flux-conserving, exposure mean",
        "min_footprint": min_footprint,
        "min_exposure_fraction": min_exposure_fraction,
        "masked_fraction": grid.masked_fraction,
        "files": [b.files for b in bands],
        "counts_in_field": [float(x) for x in grid.counts.sum(axis=(1, 2))],
    }
    return grid
