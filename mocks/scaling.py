"""Mean mass-observable relations and their correlated log-normal scatter at fixed mass.

Relations (M in Msun unless stated; E(z) = H(z)/H0):

- L_X[0.5-2 keV, R < R500] = C E(z)^gamma (M500 / 2e14)^1.62 (Pratt et al. 2009, A&A 498, 361,
  Malmquist-bias corrected L-M_Y; gamma = 2 soft-band self-similar). The relation fixes the
  *population* mean of ln L_X; the ambient (non-cool-core) component is lowered by the mean
  cool-core boost so that cool cores add scatter, not bias.
- kT = 5 keV (E(z) M500 / A)^(1/1.71) (Arnaud, Pointecouteau & Pratt 2005, A&A 441, 893).
- M_gas = f_gas,p (M500 / 1e14)^s M500-type power law; M_star likewise (Kravtsov et al. 2018).
- <N_gal> = N_p (M500c / 1e14 h^-1 Msun)^(1/1.356) (slope of McClintock et al. 2019).
- sigma_DM = 1082.9 km/s (h(z) M200c / 1e15 Msun)^0.3361 (Evrard et al. 2008, ApJ 672, 122),
  i.e. (E(z) M200c[h^-1 Msun] / 1e15)^0.3361.

Scatter: a multivariate normal in ln, correlation matrix and widths from :class:`ScalingConfig`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mocks.config import SCATTER_ORDER, IcmConfig, ScalingConfig

__all__ = [
    "mean_ln_lx",
    "mean_ln_t",
    "mean_ln_mgas",
    "mean_ln_mstar",
    "mean_ln_ngal",
    "mean_ln_sigma_dm",
    "mean_ln_cool_core_boost",
    "correlated_scatter",
    "covariance",
]


def _msun(m_h: NDArray, h: float) -> NDArray:
    """h^-1 Msun -> Msun."""
    return np.asarray(m_h, dtype=float) / h


def mean_ln_lx(m500c_h: NDArray, ez: NDArray | float, h: float, cfg: ScalingConfig) -> NDArray:
    """Return the population mean ln L_X [erg/s], rest 0.5-2 keV, projected R < R500c (Pratt+09)."""
    m = _msun(m500c_h, h)
    return (
        np.log(cfg.lx_norm_erg_s) + cfg.lx_ez_power * np.log(ez) + cfg.lx_slope * np.log(m / 2e14)
    )


def mean_ln_t(m500c_h: NDArray, ez: NDArray | float, h: float, cfg: ScalingConfig) -> NDArray:
    """Mean ln kT [keV] from the inverted Arnaud+05 M-T relation."""
    m = _msun(m500c_h, h)
    return np.log(5.0) + np.log(np.asarray(ez) * m / cfg.mt_norm_msun) / cfg.mt_slope


def mean_ln_mgas(m500c_h: NDArray, h: float, cfg: ScalingConfig) -> NDArray:
    """Mean ln M_gas(<R500c) [h^-1 Msun]."""
    m = _msun(m500c_h, h)
    return np.log(cfg.mgas_fraction_pivot * 1e14 * h) + cfg.mgas_slope * np.log(m / 1e14)


def mean_ln_mstar(m500c_h: NDArray, h: float, cfg: ScalingConfig) -> NDArray:
    """Mean ln M_star(<R500c) [h^-1 Msun] (total: BCG, satellites and ICL)."""
    m = _msun(m500c_h, h)
    return np.log(cfg.mstar_fraction_pivot * 1e14 * h) + cfg.mstar_slope * np.log(m / 1e14)


def mean_ln_ngal(m500c_h: NDArray, cfg: ScalingConfig) -> NDArray:
    """Median ln of the expected member count (before intrinsic and Poisson scatter)."""
    return np.log(cfg.ngal_pivot) + cfg.ngal_slope * np.log(np.asarray(m500c_h, float) / 1e14)


def mean_ln_sigma_dm(m200c_h: NDArray, ez: NDArray | float, cfg: ScalingConfig) -> NDArray:
    """Mean ln sigma_DM [km/s], one-dimensional (Evrard+08 eq. 1 with h(z) M200c)."""
    x = np.asarray(ez) * np.asarray(m200c_h, float) / 1e15
    return np.log(cfg.sigma_dm_15_km_s) + cfg.sigma_dm_slope * np.log(x)


def mean_ln_cool_core_boost(icm: IcmConfig, n_nodes: int = 40) -> float:
    """Return the population mean of ln(1 + rho), rho = L_cc/L_ambient (0 without a cool core).

    Gauss-Hermite quadrature over the log-normal rho; used to keep <ln L_X | M> on Pratt+09.
    """
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    rho = icm.cc_lum_ratio_median * np.exp(icm.cc_lum_ratio_scatter_ln * x)
    return float(icm.cool_core_fraction * np.sum(w * np.log1p(rho)) / np.sqrt(2 * np.pi))


def covariance(cfg: ScalingConfig) -> NDArray[np.float64]:
    """Covariance of the ln scatter, order :data:`mocks.config.SCATTER_ORDER`."""
    s = np.array([cfg.scatter[k] for k in SCATTER_ORDER])
    return np.asarray(cfg.correlation) * np.outer(s, s)


def correlated_scatter(rng: np.random.Generator, n: int, cfg: ScalingConfig) -> NDArray:
    """Draw ``n`` zero-mean correlated ln deviations, shape (n, 6), columns in SCATTER_ORDER."""
    cov = covariance(cfg)
    # eigen-decomposition tolerates zero widths (a singular covariance), unlike Cholesky
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0, None))
    return rng.standard_normal((n, cov.shape[0])) @ root.T
