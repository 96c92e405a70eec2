"""X-ray morphology measured on images: surface-brightness concentration and centroid shift.

The catalogue's maps have 128 pixels of 36 h^-1 comoving kpc, larger than the 40 kpc inner
aperture of c_SB, so the validation (docs/mocks.md) renders the ICM of a subsample again at a
finer pixel scale, from the very emission components that made the catalogue's photons
(``MockCatalogue.icm_components``), with the same photon sampler (:func:`mocks.xray.
beta_model_positions`), then measures on those maps as an observer would:

- c_SB = S(< 40 kpc) / S(< 400 kpc), physical radii around the X-ray peak (Santos et al. 2008,
  A&A 483, 35; Andrade-Santos et al. 2017, ApJ 843, 76: cool cores have c_SB > 0.075);
- the centroid shift w = std(Delta_i) / R500 of the distances Delta_i between the X-ray peak
  and the photon centroid inside apertures R_i = 0.1 i R500, i = 1..10 (Böhringer et al. 2010,
  A&A 514, A32; Poole et al. 2006; disturbed: w > 0.01, Pratt et al. 2009 / Cassano et al.
  2010 use 0.012).

This rendering is for validation only: it changes no catalogue product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from mocks.icm import Components
from mocks.xray import beta_model_positions

__all__ = ["FineMap", "render_icm", "c_sb", "centroid_shift", "x_ray_peak"]


@dataclass(frozen=True)
class FineMap:
    """A validation rendering of one cluster's ICM.

    Attributes
    ----------
    image : ndarray of int
        Photon counts, shape (npix, npix), axes (y, x).
    pixel : float
        Pixel side, comoving [h^-1 Mpc].
    half_width : float
        Half the map side, comoving [h^-1 Mpc]; the map centre is the halo centre.
    """

    image: NDArray[np.int64]
    pixel: float
    half_width: float

    def coordinates(self) -> tuple[NDArray, NDArray]:
        """Pixel-centre coordinates (x, y) relative to the halo centre, shape (npix, npix)."""
        n = self.image.shape[0]
        c = (np.arange(n) + 0.5) * self.pixel - self.half_width
        return np.meshgrid(c, c)  # x along columns, y along rows


def _select(comps: Components, keep: NDArray[np.bool_]) -> Components:
    return Components(**{k: getattr(comps, k)[keep] for k in Components.__dataclass_fields__})


def render_icm(
    rng: np.random.Generator,
    comps: Components,
    row: int,
    half_width: float,
    npix: int = 512,
    n_photons: float = 2e4,
    psf_sigma: float = 0.0,
) -> FineMap:
    """Render the ICM of catalogue row ``row`` with ``n_photons`` expected photons in the map.

    Parameters
    ----------
    rng : Generator
        Random stream (Poisson counts and photon positions).
    comps : Components
        All emission components of the catalogue (``MockCatalogue.icm_components``).
    row : int
        Truth-table row of the cluster.
    half_width : float
        Half the map side, comoving [h^-1 Mpc] (same units as the components).
    npix : int
        Pixels per side.
    n_photons : float
        Expected photons landing inside a circle of radius ``half_width`` (a depth; the
        components share them in proportion to their luminosity there).
    psf_sigma : float
        Gaussian PSF sigma, comoving [h^-1 Mpc] (0: none, Chandra-like at these scales).

    Returns
    -------
    FineMap
    """
    if npix < 8 or half_width <= 0 or n_photons <= 0:
        raise ValueError(f"need npix >= 8, half_width > 0, n_photons > 0 (row {row})")
    mine = _select(comps, comps.cluster == row)
    if len(mine) == 0:
        raise ValueError(f"no ICM component belongs to row {row}")
    r_max = np.hypot(np.abs(mine.x0), np.abs(mine.y0)) + half_width * np.sqrt(2.0)
    lum = mine.luminosity_within(r_max)
    # photons inside the map circle per unit luminosity within r_max: normalise on the total
    expected = n_photons * lum / lum.sum()
    counts = rng.poisson(expected)
    ci = np.repeat(np.arange(len(mine)), counts)
    x, y = beta_model_positions(rng, mine, ci, r_max)
    if psf_sigma > 0:
        x = x + rng.normal(0.0, psf_sigma, x.size).astype(np.float32)
        y = y + rng.normal(0.0, psf_sigma, y.size).astype(np.float32)
    pixel = 2.0 * half_width / npix
    ix = np.floor((x + half_width) / pixel).astype(np.int64)
    iy = np.floor((y + half_width) / pixel).astype(np.int64)
    ok = (ix >= 0) & (ix < npix) & (iy >= 0) & (iy < npix)
    image = np.bincount(iy[ok] * npix + ix[ok], minlength=npix * npix).reshape(npix, npix)
    return FineMap(image=image, pixel=pixel, half_width=half_width)


def x_ray_peak(fmap: FineMap, smooth: float) -> tuple[float, float]:
    """Position (x, y) of the brightest pixel after Gaussian smoothing by ``smooth`` (comoving)."""
    sm = ndimage.gaussian_filter(fmap.image.astype(float), smooth / fmap.pixel)
    iy, ix = np.unravel_index(int(np.argmax(sm)), sm.shape)
    return (ix + 0.5) * fmap.pixel - fmap.half_width, (iy + 0.5) * fmap.pixel - fmap.half_width


def c_sb(fmap: FineMap, kpc: float, centre: tuple[float, float]) -> float:
    """Santos+08 concentration: counts within 40 kpc over counts within 400 kpc (physical).

    ``kpc`` is one physical kpc in the map's (comoving h^-1 Mpc) units; apertures are taken on
    pixel centres around ``centre``.
    """
    x, y = fmap.coordinates()
    r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
    inner = fmap.image[r2 < (40 * kpc) ** 2].sum()
    outer = fmap.image[r2 < (400 * kpc) ** 2].sum()
    return float(inner / outer) if outer > 0 else float("nan")


def centroid_shift(fmap: FineMap, r500: float, centre: tuple[float, float]) -> float:
    """Centroid shift w (Böhringer+10): std of peak-centroid distances in 0.1-1 R500, / R500.

    ``r500`` in the map's units; apertures R_i = 0.1 i R500 (i = 1..10) around ``centre``
    (the X-ray peak); the standard deviation uses N - 1.
    """
    x, y = fmap.coordinates()
    img = fmap.image.astype(float)
    r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
    dist = []
    for i in range(1, 11):
        m = r2 < (0.1 * i * r500) ** 2
        tot = img[m].sum()
        if tot <= 0:
            return float("nan")
        cx, cy = (img[m] * x[m]).sum() / tot, (img[m] * y[m]).sum() / tot
        dist.append(np.hypot(cx - centre[0], cy - centre[1]))
    return float(np.std(dist, ddof=1) / r500)
