"""Spectra folded through the eROSITA response: bremsstrahlung, power laws, Galactic absorption.

- Effective area: the eFEDS survey ARF (7 telescope modules merged; Brunner et al. 2022, A&A 661,
  A1; shipped with mbproj2d by J. Sanders), vendored in ``mocks/data``. Its SPECRESP already
  averages the survey vignetting; we divide out CORRPSF (the extraction-aperture PSF correction)
  because the PSF is applied explicitly to every photon. No RMF: photons keep their true energy.
- Thermal bremsstrahlung photon spectrum dN/dE ∝ g_ff(E, T) T^-1/2 exp(-E/kT) / E (Rybicki &
  Lightman 1979, eq. 5.14b divided by E), with the thermally averaged Born-approximation Gaunt
  factor g_ff = (sqrt 3 / pi) exp(u/2) K_0(u/2), u = E/kT (Rybicki & Lightman 1979, sect. 5.3).
  No line emission (no offline APEC tables): Fe-L lines of kT <~ 2 keV gas are missing.
- Photoelectric absorption: Morrison & McCammon (1983, ApJ 270, 119) cross-sections.

Energies in keV, fluxes in erg s^-1 cm^-2, counts per second per unit normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from astropy.io import fits
from numpy.typing import ArrayLike, NDArray
from scipy.special import k0e

from mocks.errors import MockParameterError

__all__ = [
    "KEV_TO_ERG",
    "Response",
    "load_response",
    "absorption_cross_section",
    "gaunt_ff",
    "bremsstrahlung_photon_spectrum",
    "thermal_band_rates",
    "thermal_observed_flux",
    "powerlaw_band_rates",
    "flat_band_fractions",
    "thermal_rate_per_norm",
]

KEV_TO_ERG = 1.602176634e-9
ARF_FILE = "spec_020_ARF_00001.fits"

# Morrison & McCammon (1983) Table 2: sigma(E) = (c0 + c1 E + c2 E^2) E^-3 1e-24 cm^2 per H atom.
_MM83_EDGES = np.array(
    [
        0.03,
        0.1,
        0.284,
        0.4,
        0.532,
        0.707,
        0.867,
        1.303,
        1.84,
        2.471,
        3.21,
        4.038,
        7.111,
        8.331,
        10.0,
    ]
)
_MM83_C = np.array(
    [
        [17.3, 608.1, -2150.0],
        [34.6, 267.9, -476.1],
        [78.1, 18.8, 4.3],
        [71.4, 66.8, -51.4],
        [95.5, 145.8, -61.1],
        [308.9, -380.6, 294.0],
        [120.6, 169.3, -47.7],
        [141.3, 146.8, -31.5],
        [202.7, 104.7, -17.0],
        [342.7, 18.7, 0.0],
        [352.2, 18.7, 0.0],
        [433.9, -2.4, 0.75],
        [629.0, 30.9, 0.0],
        [701.2, 25.2, 0.0],
    ]
)


def absorption_cross_section(energy_kev: ArrayLike) -> NDArray[np.float64]:
    """Photoelectric cross-section per hydrogen atom [cm^2] (Morrison & McCammon 1983).

    Valid for 0.03-10 keV; the 8.331-10 keV fit is extended above 10 keV.
    """
    e = np.asarray(energy_kev, dtype=float)
    if np.any(e <= 0.03):
        raise MockParameterError("energy_kev", "must be > 0.03 keV for the MM83 fit")
    idx = np.clip(np.searchsorted(_MM83_EDGES, e, side="right") - 1, 0, len(_MM83_C) - 1)
    c = _MM83_C[idx]
    return (c[..., 0] + c[..., 1] * e + c[..., 2] * e**2) / e**3 * 1e-24


def gaunt_ff(energy_kev: ArrayLike, kt_kev: ArrayLike) -> NDArray[np.float64]:
    """Thermally averaged Born-approximation free-free Gaunt factor (Rybicki & Lightman 1979)."""
    u = np.asarray(energy_kev, dtype=float) / np.asarray(kt_kev, dtype=float)
    return np.sqrt(3) / np.pi * k0e(0.5 * u)


def bremsstrahlung_photon_spectrum(energy_kev: ArrayLike, kt_kev: ArrayLike) -> NDArray:
    """Unnormalised photon spectrum dN/dE of thermal bremsstrahlung (shape only)."""
    e = np.asarray(energy_kev, dtype=float)
    kt = np.asarray(kt_kev, dtype=float)
    return gaunt_ff(e, kt) * np.exp(-e / kt) / (e * np.sqrt(kt))


@dataclass(frozen=True)
class Response:
    """Energy grid with effective area, integration weights and per-band masks.

    Attributes
    ----------
    energy : ndarray
        Energies [keV] of a fine grid that includes every band edge exactly.
    weight : ndarray
        Trapezoid weights [keV] of that grid, per band: shape (n_band, n_energy).
    area : ndarray
        Effective area [cm^2] at ``energy`` (SPECRESP / CORRPSF, linearly interpolated).
    sigma : ndarray
        Morrison & McCammon cross-section at ``energy`` [cm^2].
    bands : tuple
        The bands [keV].
    """

    energy: NDArray[np.float64]
    weight: NDArray[np.float64]
    area: NDArray[np.float64]
    sigma: NDArray[np.float64]
    bands: tuple[tuple[float, float], ...]


@lru_cache(maxsize=1)
def _arf() -> tuple[NDArray, NDArray]:
    with (
        resources.files("mocks").joinpath("data", ARF_FILE).open("rb") as fh,
        fits.open(fh) as hdul,
    ):
        d = hdul["SPECRESP"].data
        mid = 0.5 * (np.asarray(d["ENERG_LO"], float) + np.asarray(d["ENERG_HI"], float))
        area = np.asarray(d["SPECRESP"], float) / np.asarray(d["CORRPSF"], float)
    return mid, area


@lru_cache(maxsize=16)
def load_response(bands: tuple[tuple[float, float], ...], n_per_band: int = 160) -> Response:
    """Build the integration grid for ``bands`` from the vendored eFEDS ARF.

    Parameters
    ----------
    bands : tuple of (float, float)
        Energy bands [keV], inside 0.2-10 keV.
    n_per_band : int
        Log-spaced grid points per band.
    """
    mid, area_tab = _arf()
    grids, weights = [], []
    for lo, hi in bands:
        if not (mid[0] <= lo < hi <= mid[-1]):
            raise MockParameterError(
                "bands_kev", f"band ({lo}, {hi}) keV outside the ARF ({mid[0]:.2f}-{mid[-1]:.2f})"
            )
        grids.append(np.geomspace(lo, hi, n_per_band))
    energy = np.unique(np.concatenate(grids))
    for lo, hi in bands:
        w = np.zeros_like(energy)
        sel = np.flatnonzero((energy >= lo) & (energy <= hi))
        de = np.diff(energy[sel])
        w[sel[:-1]] += 0.5 * de
        w[sel[1:]] += 0.5 * de
        weights.append(w)
    return Response(
        energy=energy,
        weight=np.array(weights),
        area=np.interp(energy, mid, area_tab),
        sigma=absorption_cross_section(energy),
        bands=tuple(bands),
    )


def _rest_band_energy(kt: NDArray, lo: float = 0.5, hi: float = 2.0, n: int = 256) -> NDArray:
    """Integral of E dN/dE over the rest-frame band [keV * shape units], per temperature."""
    e = np.geomspace(lo, hi, n)
    spec = bremsstrahlung_photon_spectrum(e[None, :], kt[:, None]) * e[None, :]
    return np.trapezoid(spec, e, axis=1)


def thermal_band_rates(
    response: Response,
    lum_rest_0p5_2: ArrayLike,
    kt_kev: ArrayLike,
    z: float,
    d_m_cm: float,
    nh_cm2: ArrayLike,
) -> NDArray[np.float64]:
    """Count rates per band of thermal-bremsstrahlung sources of given rest-frame luminosity.

    The photon emission rate per rest energy is N(E_r) = K s(E_r, T) with K fixed by
    L[0.5-2 keV, rest] = K int E s dE; the observed photon flux density is
    n(E_o) = N(E_o (1 + z)) / (4 pi D_M^2), so that the energy flux is L / (4 pi D_L^2).

    Parameters
    ----------
    response : Response
        From :func:`load_response`.
    lum_rest_0p5_2 : array_like ['power']
        Rest-frame 0.5-2 keV luminosity [erg/s], shape (n,).
    kt_kev : array_like ['energy']
        Temperature [keV], shape (n,).
    z : float
        Redshift.
    d_m_cm : float ['length']
        Comoving transverse distance [cm].
    nh_cm2 : array_like
        Galactic hydrogen column [cm^-2], shape (n,).

    Returns
    -------
    rates : ndarray
        Counts per second per band, shape (n, n_band).
    """
    lum = np.atleast_1d(np.asarray(lum_rest_0p5_2, dtype=float))
    kt = np.broadcast_to(np.asarray(kt_kev, dtype=float), lum.shape)
    nh = np.broadcast_to(np.asarray(nh_cm2, dtype=float), lum.shape)
    if np.any(kt <= 0) or np.any(lum < 0) or np.any(nh < 0):
        raise MockParameterError("kt_kev/lum/nh", "temperatures must be > 0, L and N_H >= 0")
    norm = lum / (_rest_band_energy(kt) * KEV_TO_ERG)  # photons / s / (shape unit)
    e_rest = response.energy * (1 + z)
    shape = bremsstrahlung_photon_spectrum(e_rest[None, :], kt[:, None])
    transmitted = np.exp(-nh[:, None] * response.sigma[None, :]) * response.area[None, :]
    integrand = shape * transmitted  # (n, n_e)
    per_band = integrand @ response.weight.T  # (n, n_band), dE_obs weights
    # N(E_r) dE_r / (4 pi D_M^2) per observed energy: n(E_o) = K s(E_o (1+z)) / (4 pi D_M^2)
    return norm[:, None] * per_band / (4 * np.pi * d_m_cm**2)


def thermal_observed_flux(
    lum_rest_0p5_2: ArrayLike, kt_kev: ArrayLike, z: float, d_m_cm: float
) -> NDArray[np.float64]:
    """Unabsorbed observed-frame 0.5-2 keV energy flux [erg/s/cm^2] of bremsstrahlung sources.

    F = L / (4 pi D_M^2) int_0.5^2 E s(E (1+z)) dE / int_0.5^2 E s(E) dE, which reduces to
    L / (4 pi D_L^2) for a band-limited K correction of unity.
    """
    lum = np.atleast_1d(np.asarray(lum_rest_0p5_2, dtype=float))
    kt = np.broadcast_to(np.asarray(kt_kev, dtype=float), lum.shape)
    e = np.geomspace(0.5, 2.0, 256)
    obs = np.trapezoid(
        bremsstrahlung_photon_spectrum(e[None, :] * (1 + z), kt[:, None]) * e[None, :], e, axis=1
    )
    return lum / (4 * np.pi * d_m_cm**2) * obs / _rest_band_energy(kt)


def powerlaw_band_rates(
    response: Response, photon_index: float, nh_cm2: ArrayLike
) -> NDArray[np.float64]:
    """Count rate per band for unit observed-frame 0.5-2 keV energy flux (1 erg/s/cm^2).

    Parameters
    ----------
    response : Response
        From :func:`load_response`.
    photon_index : float
        Gamma of dN/dE ∝ E^-Gamma.
    nh_cm2 : array_like
        Galactic column [cm^-2], shape (n,); the flux is the unabsorbed one.

    Returns
    -------
    rates : ndarray
        [counts s^-1 per (erg s^-1 cm^-2)], shape (n, n_band).
    """
    nh = np.atleast_1d(np.asarray(nh_cm2, dtype=float))
    e = np.geomspace(0.5, 2.0, 256)
    energy_flux = np.trapezoid(e ** (1 - photon_index), e) * KEV_TO_ERG
    shape = response.energy ** (-photon_index) / energy_flux
    transmitted = np.exp(-nh[:, None] * response.sigma[None, :]) * response.area[None, :]
    return (shape[None, :] * transmitted) @ response.weight.T


def thermal_rate_per_norm(
    response: Response, kt_kev: float, nh_cm2: ArrayLike
) -> NDArray[np.float64]:
    """Band count rates of a z = 0 bremsstrahlung spectrum giving 1 count/s in 0.5-2 keV.

    Used for the Galactic foreground, whose normalisation is given as a 0.5-2 keV count rate.
    """
    nh = np.atleast_1d(np.asarray(nh_cm2, dtype=float))
    shape = bremsstrahlung_photon_spectrum(response.energy, kt_kev)
    transmitted = np.exp(-nh[:, None] * response.sigma[None, :]) * response.area[None, :]
    rates = (shape[None, :] * transmitted) @ response.weight.T
    mid, area_tab = _arf()
    grid = np.geomspace(0.5, 2.0, 512)
    ref = np.trapezoid(
        bremsstrahlung_photon_spectrum(grid, kt_kev)[None, :]
        * np.exp(-nh[:, None] * absorption_cross_section(grid)[None, :])
        * np.interp(grid, mid, area_tab)[None, :],
        grid,
        axis=1,
    )
    return rates / ref[:, None]


def flat_band_fractions(bands: tuple[tuple[float, float], ...]) -> NDArray[np.float64]:
    """Return the counts per band of a flat (counts/keV) spectrum relative to its 0.5-2 keV counts."""
    widths = np.array([hi - lo for lo, hi in bands])
    return widths / 1.5
