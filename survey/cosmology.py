"""Cosmology handling for survey data: the catalogue's cosmology, distances, mass definitions.

Masses are stored as M500c in h^-1 Msun in the cosmology recorded on the catalogue (default
Planck18, Planck Collaboration 2020, A&A 641, A6). Mass-definition changes use an NFW profile
with the Diemer & Joyce (2019, ApJ 871, 168) concentration model through colossus
(Diemer 2018, ApJS 239, 35); colossus works in h^-1 Msun, which is why the stored convention is
h^-1 Msun.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import astropy.units as u
import numpy as np
from astropy.cosmology import FLRW, FlatLambdaCDM, LambdaCDM, realizations
from pydantic import BaseModel, ConfigDict, Field
from scipy.interpolate import RegularGridInterpolator

from astro.cosmology import colossus_current, colossus_from_astropy
from survey.errors import SpecError

__all__ = [
    "CosmologySpec",
    "colossus_cosmology",
    "convert_mass_definition",
    "comoving_transverse_mpc_h",
    "efunc",
]

_BUILTIN = tuple(realizations.available)
_EXACT_MAX_Z = 64
_GRID_NZ = 40
_GRID_NM = 48


class CosmologySpec(BaseModel):
    """The cosmology a catalogue's masses and distances assume.

    Either a named astropy realisation (``name: Planck18``) or flat/non-flat LambdaCDM
    parameters (``H0``, ``Om0``, optional ``Ode0``, ``Ob0``). ``sigma8`` and ``ns`` are only used
    by the colossus concentration model.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="Planck18", description="astropy realisation or a free label")
    H0: float | None = Field(default=None, gt=0, description="Hubble constant [km/s/Mpc]")
    Om0: float | None = Field(default=None, gt=0, lt=2)
    Ode0: float | None = Field(default=None, ge=0, lt=2, description="None = flat")
    Ob0: float | None = Field(default=None, ge=0, lt=1)
    Tcmb0: float = Field(default=2.7255, ge=0, description="CMB temperature [K]")
    sigma8: float = Field(default=0.8102, gt=0, lt=2)
    ns: float = Field(default=0.9665, gt=0, lt=2)

    def astropy(self) -> FLRW:
        """Return the astropy cosmology (cached: building one costs ~0.1 s)."""
        return _build(self.name, self.H0, self.Om0, self.Ode0, self.Ob0, self.Tcmb0)

    @property
    def h(self) -> float:
        """Dimensionless Hubble parameter H0 / (100 km/s/Mpc)."""
        return float(self.astropy().h)

    def record(self) -> dict[str, Any]:
        """JSON-able description stored in ``catalogues.cosmology``."""
        c = self.astropy()
        return {
            "name": self.name,
            "H0": float(c.H0.to_value(u.km / u.s / u.Mpc)),
            "Om0": float(c.Om0),
            "Ode0": float(c.Ode0),
            "Ob0": None if c.Ob0 is None else float(c.Ob0),
            "Tcmb0": float(c.Tcmb0.to_value(u.K)),
            "sigma8": self.sigma8,
            "ns": self.ns,
            "mass_unit": "h^-1 Msun",
        }


@lru_cache(maxsize=32)
def _build(
    name: str,
    H0: float | None,
    Om0: float | None,
    Ode0: float | None,
    Ob0: float | None,
    Tcmb0: float,
) -> FLRW:
    if H0 is None and Om0 is None:
        if name not in _BUILTIN:
            raise SpecError(
                f"cosmology {name!r} is not an astropy realisation; give H0 and Om0 or one of "
                f"{sorted(_BUILTIN)}"
            )
        return getattr(realizations, name)
    if H0 is None or Om0 is None:
        raise SpecError(f"cosmology {name!r}: give both H0 and Om0 (or neither)")
    ob0 = Ob0 if Ob0 is not None else 0.049
    if Ode0 is None:
        return FlatLambdaCDM(H0=H0, Om0=Om0, Ob0=ob0, Tcmb0=Tcmb0, name=name)
    return LambdaCDM(H0=H0, Om0=Om0, Ode0=Ode0, Ob0=ob0, Tcmb0=Tcmb0, name=name)


PLANCK18 = CosmologySpec(name="Planck18")


@contextmanager
def colossus_cosmology(spec: CosmologySpec) -> Iterator[Any]:
    """Set colossus' global cosmology to ``spec`` (no disk cache) and restore it afterwards."""
    cosmo = colossus_from_astropy(spec.astropy(), sigma8=spec.sigma8, ns=spec.ns, name=spec.name)
    with colossus_current(cosmo):
        yield cosmo


def convert_mass_definition(
    m_h: np.ndarray,
    z: np.ndarray,
    mdef_in: str,
    mdef_out: str,
    cosmology: CosmologySpec,
    *,
    c_model: str = "diemer19",
) -> np.ndarray:
    """Convert halo masses between spherical-overdensity definitions.

    Assumes an NFW profile whose concentration follows ``c_model`` (default Diemer & Joyce 2019)
    at the input definition; colossus ``mass_adv.changeMassDefinitionCModel``.

    Parameters
    ----------
    m_h : ndarray ['mass']
        Masses in the input definition [h^-1 Msun].
    z : ndarray ['redshift']
        Redshifts (same shape as ``m_h``).
    mdef_in, mdef_out : str
        colossus mass definitions, e.g. ``"200c"``, ``"500c"``, ``"200m"``, ``"vir"``.
    cosmology : CosmologySpec
        The cosmology the masses assume.
    c_model : str
        colossus concentration model.

    Returns
    -------
    ndarray ['mass']
        Masses in the output definition [h^-1 Msun].
    """
    m_h = np.atleast_1d(np.asarray(m_h, dtype=float))
    z = np.broadcast_to(np.asarray(z, dtype=float), m_h.shape)
    if mdef_in == mdef_out:
        return m_h.copy()
    if np.any(~np.isfinite(m_h) | (m_h <= 0)) or np.any(~np.isfinite(z) | (z <= 0)):
        raise ValueError("convert_mass_definition needs finite positive masses and redshifts")
    zs = np.unique(z)
    with colossus_cosmology(cosmology):
        if zs.size <= _EXACT_MAX_Z:
            out = np.empty_like(m_h)
            for zi in zs:  # colossus takes one redshift per call
                sel = z == zi
                out[sel] = _change(m_h[sel], float(zi), mdef_in, mdef_out, c_model)
            return out
        # Many distinct redshifts: tabulate ln(M_out/M_in) on a (z, ln M) grid and interpolate
        # (the ratio depends on M and z only through c(M, z): smooth; error < 1e-3, tested).
        z_nodes = np.linspace(zs[0], zs[-1], _GRID_NZ)
        lnm = np.log(m_h)
        lnm_nodes = np.linspace(lnm.min() - 0.01, lnm.max() + 0.01, _GRID_NM)
        table = np.stack(
            [
                np.log(_change(np.exp(lnm_nodes), float(zi), mdef_in, mdef_out, c_model))
                - lnm_nodes
                for zi in z_nodes
            ]
        )
    interp = RegularGridInterpolator((z_nodes, lnm_nodes), table)
    return m_h * np.exp(interp(np.column_stack([z, lnm])))


def _change(m: np.ndarray, z: float, mdef_in: str, mdef_out: str, c_model: str) -> np.ndarray:
    from colossus.halo import mass_adv

    return np.asarray(
        mass_adv.changeMassDefinitionCModel(m, z, mdef_in, mdef_out, c_model=c_model)[0], float
    )


def comoving_transverse_mpc_h(z: float, cosmology: CosmologySpec) -> float:
    """Comoving transverse distance D_M(z) [h^-1 Mpc] (Hogg 1999, eq. 16)."""
    c = cosmology.astropy()
    return float(c.comoving_transverse_distance(z).to_value(u.Mpc) * c.h)


def efunc(z: float | np.ndarray, cosmology: CosmologySpec) -> float | np.ndarray:
    """E(z) = H(z) / H0 (Hogg 1999, eq. 14)."""
    value = cosmology.astropy().efunc(z)
    return float(value) if np.ndim(value) == 0 else np.asarray(value)
