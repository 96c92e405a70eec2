"""Survey sections of the mock configuration: telescope and backgrounds, AGN, galaxies.

Every number carries its unit and source in its description (docs/mocks.md has the table).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator, model_validator

from mocks.config_base import ARF_RANGE_KEV, _Strict

__all__ = ["XrayConfig", "AgnConfig", "GalaxyConfig"]


class XrayConfig(_Strict):
    """Telescope, exposure and backgrounds (eROSITA-like survey)."""

    bands_kev: tuple[tuple[float, float], ...] = Field(
        ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0)), description="Energy bands [keV] (Ho+23)"
    )
    exposure_median_s: float = Field(
        2000.0, gt=0, le=1e7, description="Median unvignetted exposure [s] (eRASS:8-like)"
    )
    exposure_scatter_ln: float = Field(0.15, ge=0, lt=2, description="ln scatter of exposure")
    nh_median_cm2: float = Field(
        3e20, gt=0, le=1e23, description="Median Galactic N_H [cm^-2] (high-latitude, recalled)"
    )
    nh_scatter_ln: float = Field(0.5, ge=0, lt=3, description="ln scatter of N_H")
    psf_hew_arcsec: float = Field(
        26.0, gt=0, le=600, description="Survey-averaged PSF half-energy width [arcsec]"
    )
    psf_king_beta: float = Field(
        1.5, gt=1.0, le=5, description="King-profile slope of the PSF (1.5: r^-3 wings)"
    )
    particle_rate: float = Field(
        6e-4,
        ge=0,
        description="Particle background [cts/s/arcmin^2] in 0.5-2 keV, flat in counts/keV "
        "(science.md, derived, unverified)",
    )
    cxb_intensity: float = Field(
        7.53e-12,
        ge=0,
        description="Total extragalactic CXB 0.5-2 keV [erg/s/cm^2/deg^2] (Hickox & "
        "Markevitch 2006, recalled); sources above agn.s_min are drawn explicitly and removed "
        "from the diffuse part",
    )
    cxb_photon_index: float = Field(1.4, description="CXB photon index (HM06, recalled)")
    foreground_rate: float = Field(
        8e-4,
        ge=0,
        description="Galactic foreground [cts/s/arcmin^2] in 0.5-2 keV through the ARF, so that "
        "the sky background totals ~2e-3 (science.md, unverified)",
    )
    foreground_kt_kev: float = Field(0.2, gt=0, description="Foreground plasma kT [keV]")
    diffuse_background: bool = Field(
        True,
        description="Add the diffuse sky (unresolved CXB, Galactic foreground) and particle "
        "backgrounds; off in the paper preset (Ho+23's photon maps hold ICM and AGN photons only)",
    )

    @field_validator("bands_kev")
    @classmethod
    def _check_bands(cls, v: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if len(v) == 0:
            raise ValueError("needs at least one band")
        lo_ok, hi_ok = ARF_RANGE_KEV
        prev = -np.inf
        for lo, hi in v:
            if not (lo_ok <= lo < hi <= hi_ok):
                raise ValueError(
                    f"unknown band ({lo}, {hi}) keV: bands must lie in {lo_ok}-{hi_ok} keV "
                    "(the vendored ARF) with low < high"
                )
            if lo < prev:
                raise ValueError("bands must be increasing and must not overlap")
            prev = hi
        return v


class AgnConfig(_Strict):
    """Point sources: field AGN from a log N-log S and AGN in member galaxies."""

    lognlogs_k: float = Field(
        151.0,
        gt=0,
        description="dN/dS normalisation [deg^-2 per unit S/1e-14 cgs] of the broken power law "
        "(Georgakakis+08 0.5-2 keV form; values recalled, unverified)",
    )
    lognlogs_beta_faint: float = Field(1.58, gt=1, lt=3, description="Faint-end slope (recalled)")
    lognlogs_beta_bright: float = Field(2.5, gt=1, lt=4, description="Bright-end slope (recalled)")
    lognlogs_break: float = Field(
        10**-14.36, gt=0, description="Break flux [erg/s/cm^2] (recalled)"
    )
    s_min: float = Field(
        1e-15, gt=0, description="Faintest explicit source [erg/s/cm^2], 0.5-2 keV"
    )
    s_max: float = Field(1e-11, gt=0, description="Brightest field source [erg/s/cm^2]")
    photon_index: float = Field(1.4, description="Field-source photon index (HM06, recalled)")
    cluster_fraction: float = Field(
        0.01, ge=0, le=1, description="Fraction of members hosting an X-ray AGN (recalled)"
    )
    cluster_lmin: float = Field(1e41, gt=0, description="Cluster AGN L[0.5-2] minimum [erg/s]")
    cluster_lmax: float = Field(1e44, gt=0, description="Cluster AGN L[0.5-2] maximum [erg/s]")
    cluster_lf_slope: float = Field(1.5, gt=1, description="dN/dL ∝ L^-slope (assumed)")
    cluster_photon_index: float = Field(1.8, description="Cluster AGN photon index")

    @model_validator(mode="after")
    def _ranges(self) -> AgnConfig:
        if not self.s_min < self.s_max:
            raise ValueError("s_min must be < s_max")
        if not self.cluster_lmin < self.cluster_lmax:
            raise ValueError("cluster_lmin must be < cluster_lmax")
        return self


class GalaxyConfig(_Strict):
    """Member galaxies and interlopers in the projected cylinder."""

    velocity_bias: float = Field(
        1.0,
        gt=0,
        le=3,
        description="sigma_gal / sigma_DM; Lau+10: no bias for stellar-mass-selected galaxies "
        "(verified)",
    )
    concentration_factor: float = Field(
        1.0, gt=0, le=5, description="c_gal = factor * c200c of the dark matter"
    )
    los_window_km_s: float = Field(
        3785.0, gt=0, le=3e4, description="Half-width of the velocity window [km/s] (Ho+23)"
    )
    galaxy_bias: float = Field(1.2, gt=0, le=5, description="Large-scale galaxy bias (recalled)")
    peculiar_velocity_km_s: float = Field(
        400.0, ge=0, le=3000, description="1D peculiar velocity of interlopers [km/s] (recalled)"
    )
    two_halo: bool = Field(True, description="Add correlated (2-halo) interlopers")
    interloper_density: float | None = Field(
        None,
        gt=0,
        description="Override the field galaxy density [h^3 Mpc^-3]; None: from the mass "
        "function times the member-count relation",
    )
