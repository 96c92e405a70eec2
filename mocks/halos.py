"""Cosmology, halo mass function, spherical-overdensity radii and NFW mass conversions.

astropy provides distances and rho_crit(z) (the stored, authoritative cosmology); colossus
(Diemer 2018, ApJS 239, 35) provides the Tinker et al. (2008, ApJ 688, 709) mass function, the
c(M) relation (Diemer & Joyce 2019, ApJ 871, 168 by default) and the linear correlation function,
all offline. colossus is used with ``persistence=''`` so it never writes a cache under ``~``.

Units: masses in h^-1 Msun, lengths in h^-1 Mpc (comoving unless called proper), as in
Ho et al. (2023).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import astropy.units as u
import numpy as np
from astropy.cosmology import FLRW, WMAP9, Planck15, Planck18
from numpy.typing import ArrayLike, NDArray

from astro.cosmology import colossus_from_astropy
from mocks.errors import MockParameterError

__all__ = [
    "get_cosmology",
    "colossus_cosmology",
    "rho_crit_h2",
    "r_delta_proper",
    "nfw_mu",
    "m500c_to_m200c",
    "HaloMassFunction",
    "allocate",
    "comoving_distance_h",
    "use_colossus",
]

_ASTROPY = {"Planck18": Planck18, "Planck15": Planck15, "WMAP9": WMAP9}
_COLOSSUS_NAME = {"Planck18": "planck18", "Planck15": "planck15", "WMAP9": "WMAP9"}


def get_cosmology(name: str) -> FLRW:
    """Return the astropy cosmology of that name (Planck18, Planck15 or WMAP9)."""
    if name not in _ASTROPY:
        raise MockParameterError("cosmology", f"unknown {name!r}; choose one of {sorted(_ASTROPY)}")
    return _ASTROPY[name]


@lru_cache(maxsize=4)
def colossus_cosmology(name: str):  # noqa: ANN201 - colossus has no type hints
    """Return colossus's cosmology matching the astropy one of that name (no disk cache).

    sigma8 and n_s come from colossus's parameter set of the same name (e.g. Planck 2018:
    sigma8 = 0.8102, n_s = 0.9665); the conversion is :func:`astro.cosmology.colossus_from_astropy`.
    """
    from colossus.cosmology import cosmology  # colossus is heavy: loaded on first use

    params = cosmology.cosmologies[_COLOSSUS_NAME[name]]
    return colossus_from_astropy(
        get_cosmology(name), sigma8=params["sigma8"], ns=params["ns"], name=name
    )


def use_colossus(name: str):  # noqa: ANN201
    """Make the colossus cosmology ``name`` the current one (colossus keeps a global) and return it."""
    from colossus.cosmology import cosmology

    cosmo = colossus_cosmology(name)
    cosmology.setCurrent(cosmo)
    return cosmo


def _check_z(z: ArrayLike, name: str = "redshift") -> NDArray[np.float64]:
    z = np.asarray(z, dtype=float)
    if np.any(~np.isfinite(z)) or np.any(z < 0) or np.any(z > 10):
        raise MockParameterError(name, f"must be in [0, 10] (got {z})")
    return z


def _check_mass(m: ArrayLike, name: str) -> NDArray[np.float64]:
    m = np.asarray(m, dtype=float)
    if np.any(~np.isfinite(m)) or np.any(m <= 0):
        raise MockParameterError(name, "masses must be positive and finite [h^-1 Msun]")
    return m


def rho_crit_h2(cosmo: FLRW, z: ArrayLike) -> NDArray[np.float64]:
    """Critical density at redshift z [h^2 Msun Mpc^-3] (proper)."""
    z = _check_z(z)
    rho = cosmo.critical_density(z).to(u.Msun / u.Mpc**3).value
    return rho / cosmo.h**2


def r_delta_proper(cosmo: FLRW, m: ArrayLike, z: ArrayLike, delta: float = 500.0) -> NDArray:
    """Proper radius enclosing mean density ``delta`` times rho_crit(z).

    Parameters
    ----------
    cosmo : FLRW
        Cosmology.
    m : array_like ['mass']
        M_delta,c [h^-1 Msun].
    z : array_like
        Redshift.
    delta : float
        Overdensity with respect to the critical density.

    Returns
    -------
    r : ndarray ['length']
        R_delta,c, proper [h^-1 Mpc].
    """
    m = _check_mass(m, "m500c" if delta == 500 else f"m{delta:g}c")
    return (3 * m / (4 * np.pi * delta * rho_crit_h2(cosmo, z))) ** (1 / 3)


def comoving_distance_h(cosmo: FLRW, z: float) -> float:
    """Comoving transverse distance D_M(z) [h^-1 Mpc] (flat: equals the comoving distance)."""
    _check_z(z)
    return float(cosmo.comoving_transverse_distance(z).to_value(u.Mpc) * cosmo.h)


def nfw_mu(x: ArrayLike) -> NDArray[np.float64]:
    """NFW enclosed-mass shape mu(x) = ln(1 + x) - x / (1 + x) (Navarro, Frenk & White 1997)."""
    x = np.asarray(x, dtype=float)
    return np.log1p(x) - x / (1 + x)


def _x_of_overdensity_ratio(c: NDArray, ratio: float) -> NDArray:
    """Solve mu(c x) / (mu(c) x^3) = ratio for x = r_Delta / r_200c (vectorised bisection)."""
    lo = np.full_like(c, 1e-3)
    hi = np.full_like(c, 1.0 if ratio >= 1 else 10.0)
    mu_c = nfw_mu(c)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        f = nfw_mu(c * mid) / (mu_c * mid**3) - ratio
        lo = np.where(f > 0, mid, lo)
        hi = np.where(f > 0, hi, mid)
    return 0.5 * (lo + hi)


def _no_disk_cache_for_concentration() -> None:
    """Keep colossus's c(M) module from writing its table cache under ``~/.colossus``.

    ``colossus.halo.concentration`` creates its storage with persistence 'rw' regardless of the
    settings; installing an in-memory storage user first (only if none exists yet) keeps the
    table in memory. The table is rebuilt once per process (milliseconds).
    """
    from colossus.halo import concentration
    from colossus.utils import storage

    if getattr(concentration, "storageUser", None) is None:
        concentration.storageUser = storage.StorageUser(
            "halo.concentration", "", concentration._getName, concentration._getHash, None
        )


@lru_cache(maxsize=64)
def _cm_table(name: str, z: float, model: str) -> tuple[NDArray, NDArray]:
    from colossus.halo import concentration

    _no_disk_cache_for_concentration()
    use_colossus(name)
    lgm = np.linspace(11.0, 16.5, 56)
    c = concentration.concentration(10**lgm, "200c", z, model=model)
    return lgm, np.asarray(c, dtype=float)


def m500c_to_m200c(
    m500c: ArrayLike, z: float, cosmology: str = "Planck18", model: str = "diemer19"
) -> tuple[NDArray, NDArray]:
    """Convert M500c to M200c assuming an NFW profile with c200c from a colossus c(M) model.

    c200c(M200c) is tabulated once per (z, model) and interpolated in log mass; the fixed point
    M200c = M500c mu(c) / mu(c x500) is iterated (x500 = r500c/r200c from the NFW profile).

    Parameters
    ----------
    m500c : array_like ['mass']
        M500c [h^-1 Msun].
    z : float
        Redshift.
    cosmology : str
        Cosmology name.
    model : str
        colossus concentration model.

    Returns
    -------
    m200c : ndarray ['mass']
        M200c [h^-1 Msun].
    c200c : ndarray
        NFW concentration r200c / r_s.
    """
    m500c = _check_mass(m500c, "m500c")
    _check_z(z)
    lgm_tab, c_tab = _cm_table(cosmology, float(z), model)
    m200 = 1.4 * m500c
    for _ in range(8):
        c = np.interp(np.log10(m200), lgm_tab, c_tab)
        x500 = _x_of_overdensity_ratio(c, 500.0 / 200.0)
        m200 = m500c * nfw_mu(c) / nfw_mu(c * x500)
    c = np.interp(np.log10(m200), lgm_tab, c_tab)
    return m200, c


@dataclass(frozen=True)
class HaloMassFunction:
    """Tabulated dn/dlnM of M500c at one redshift (colossus, Tinker+08) for sampling and integrals.

    Attributes
    ----------
    z : float
        Redshift.
    ln_m : ndarray
        ln(M500c / h^-1 Msun) grid.
    dndlnm : ndarray
        Comoving number density per ln M [h^3 Mpc^-3].
    """

    z: float
    ln_m: NDArray[np.float64]
    dndlnm: NDArray[np.float64]

    @classmethod
    def build(
        cls,
        z: float,
        cosmology: str = "Planck18",
        lgm_min: float = 13.5,
        lgm_max: float = 15.8,
        model: str = "tinker08",
        n: int = 512,
    ) -> HaloMassFunction:
        """Tabulate the mass function between ``lgm_min`` and ``lgm_max`` (log10 h^-1 Msun)."""
        from colossus.lss import mass_function

        _check_z(z)
        if not lgm_min < lgm_max:
            raise MockParameterError("log10_m500c_min", "must be < log10_m500c_max")
        use_colossus(cosmology)
        ln_m = np.linspace(lgm_min, lgm_max, n) * np.log(10)
        dn = mass_function.massFunction(np.exp(ln_m), z, mdef="500c", model=model, q_out="dndlnM")
        return cls(z=float(z), ln_m=ln_m, dndlnm=np.asarray(dn, dtype=float))

    def number_density(self) -> float:
        """n(>M_min) [h^3 Mpc^-3]."""
        return float(np.trapezoid(self.dndlnm, self.ln_m))

    def sample(self, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
        """Draw ``n`` masses M500c [h^-1 Msun] by inverse-CDF sampling of the table."""
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (self.dndlnm[1:] + self.dndlnm[:-1]))])
        cdf *= np.diff(self.ln_m)[0]
        cdf /= cdf[-1]
        return np.exp(np.interp(rng.random(n), cdf, self.ln_m))


def allocate(n: int, weights: ArrayLike) -> NDArray[np.int64]:
    """Split ``n`` items over bins proportionally to ``weights`` (largest remainder, deterministic)."""
    w = np.asarray(weights, dtype=float)
    if n < 0 or np.any(w < 0) or w.sum() <= 0:
        raise MockParameterError(
            "weights", "need n >= 0 and non-negative weights with a positive sum"
        )
    exact = n * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    rest = n - out.sum()
    order = np.argsort(-(exact - out), kind="stable")
    out[order[:rest]] += 1
    return out
