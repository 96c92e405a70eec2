"""Halo assembly physics: concentrations, accretion histories and major-merger statistics.

The relations the population sampler (mocks/population.py) follows each halo with, after
Ho et al. 2023's simulation box (Magneticum Box2/hr), per halo:

- an *assembly deviate* ``delta`` ~ N(0, 1) sets the concentration at fixed mass,
  ``c200c = c_diemer19(M200c, z) 10^(sigma_c delta)``, with the N-body scatter sigma_c
  (Bhattacharya et al. 2013, ApJ 766, 32: sigma_ln c ~ 0.33; Diemer & Kravtsov 2015, ApJ 799,
  108: ~0.16 dex); early-forming halos are the concentrated ones
  (:func:`mass_and_concentration`, :func:`m200c_given_c`);
- the virial overdensity of Bryan & Norman (1998) for c_vir (:func:`c_vir_over_c200c`), which
  sets the Wechsler et al. (2002) accretion history in mocks/population.py;
- major mergers: the Fakhouri, Ma & Boylan-Kolchin (2010, MNRAS 406, 2267, eq. 1) merger rate
  per halo, dN/dz/dxi = A (M/1e12 Msun)^a xi^b exp[(xi/xi_t)^g] (1+z)^eta, integrated over
  mass ratios xi >= ``merger_min_ratio`` (:func:`fakhouri_rate_per_dz`), and the mass ratios
  drawn from the same kernel restricted to [``merger_min_ratio``, 1]
  (:func:`merger_ratio_pdf`, :func:`merger_ratio_quantile`).
"""

from __future__ import annotations

import numpy as np
from astropy.cosmology import FLRW
from numpy.typing import NDArray

from mocks.config import MockConfig
from mocks.halos import (
    _cm_table,
    _x_of_overdensity_ratio,
    nfw_mu,
)

__all__ = [
    "m200c_given_c",
    "mass_and_concentration",
    "c_vir_over_c200c",
    "fakhouri_rate_per_dz",
    "merger_ratio_pdf",
    "merger_ratio_quantile",
]


def m200c_given_c(m500c: NDArray, c200c: NDArray) -> NDArray:
    """M200c of an NFW halo of mass M500c and concentration c200c [same unit as m500c]."""
    x500 = _x_of_overdensity_ratio(np.asarray(c200c, float), 500.0 / 200.0)
    return np.asarray(m500c, float) * nfw_mu(c200c) / nfw_mu(c200c * x500)


def _delta_vir(cosmo: FLRW, z: float) -> float:
    """Virial overdensity relative to critical (Bryan & Norman 1998, flat universe)."""
    x = float(cosmo.Om(z)) - 1.0
    return 18 * np.pi**2 + 82 * x - 39 * x**2


def c_vir_over_c200c(c200c: NDArray, cosmo: FLRW, z: float) -> NDArray:
    """c_vir / c200c of an NFW halo (r_vir / r_200c at the same scale radius)."""
    return _x_of_overdensity_ratio(np.asarray(c200c, float), _delta_vir(cosmo, z) / 200.0)


def fakhouri_rate_per_dz(m_msun: NDArray, z: float, cfg: MockConfig) -> NDArray:
    """Mean number of mergers per unit redshift with mass ratio in [xi_min, 1] (FMBK10 eq. 1)."""
    a = cfg.assembly
    xi = np.geomspace(a.merger_min_ratio, 1.0, 200)
    shape = xi**a.fmbk_beta * np.exp((xi / a.fmbk_xi_tilde) ** a.fmbk_gamma)
    integral = float(np.trapezoid(shape, xi))
    m = np.asarray(m_msun, float)
    return a.fmbk_a * (m / 1e12) ** a.fmbk_alpha * (1 + z) ** a.fmbk_eta * integral


def merger_ratio_pdf(xi: NDArray, cfg: MockConfig) -> NDArray:
    """Normalised pdf of major-merger mass ratios xi in [merger_min_ratio, 1] (FMBK10 kernel).

    p(xi) ∝ xi^beta exp[(xi / xi_t)^gamma] (Fakhouri, Ma & Boylan-Kolchin 2010, eq. 1; the
    mass and redshift factors do not depend on xi); 0 outside the range.
    """
    grid, cdf = _ratio_cdf(cfg)
    a = cfg.assembly
    x = np.asarray(xi, float)
    inside = (x >= grid[0]) & (x <= 1.0)
    pdf = np.zeros(x.shape)
    pdf[inside] = (
        x[inside] ** a.fmbk_beta * np.exp((x[inside] / a.fmbk_xi_tilde) ** a.fmbk_gamma)
    ) / cdf[-1]
    return pdf


def _ratio_cdf(cfg: MockConfig, n: int = 512) -> tuple[NDArray, NDArray]:
    """Log-spaced xi grid on [merger_min_ratio, 1] and the unnormalised cumulative kernel."""
    a = cfg.assembly
    xi = np.geomspace(a.merger_min_ratio, 1.0, n)
    f = xi**a.fmbk_beta * np.exp((xi / a.fmbk_xi_tilde) ** a.fmbk_gamma)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(xi))])
    return xi, cdf


def merger_ratio_quantile(u_draw: NDArray, cfg: MockConfig) -> NDArray:
    """Mass ratios for uniform draws ``u_draw`` in [0, 1): inverse CDF of the FMBK10 kernel."""
    xi, cdf = _ratio_cdf(cfg)
    return np.interp(np.asarray(u_draw, float) * cdf[-1], cdf, xi)


def _concentration(m200c: NDArray, z: float, cfg: MockConfig, delta: NDArray) -> NDArray:
    lgm, c = _cm_table(cfg.cosmology, float(z), cfg.concentration_model)  # cached per (z, model)
    mean = np.interp(np.log10(m200c), lgm, c)
    return mean * 10 ** (cfg.assembly.concentration_scatter_dex * delta)


def mass_and_concentration(
    m500c: NDArray, z: float, cfg: MockConfig, delta: NDArray
) -> tuple[NDArray, NDArray]:
    """(M200c, c200c) of halos of mass M500c at redshift z (fixed point in M200c)."""
    m200 = 1.4 * m500c
    for _ in range(6):
        c = _concentration(m200, z, cfg, delta)
        m200 = m200c_given_c(m500c, c)
    return m200, _concentration(m200, z, cfg, delta)
