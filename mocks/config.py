"""Validated configuration of the mock generator (pydantic), loadable from YAML with overrides.

Every physical number of the mock lives here with its unit and its source. Numbers marked
"recalled" in a description were not checked against the paper they cite (the project had no
access to it); numbers marked "verified" were read from the source (abstract or table). See
``docs/mocks.md`` for the full table.

Validation errors are raised as :class:`mocks.errors.MockParameterError`, naming the (dotted)
parameter, never as a bare pydantic ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mocks.errors import MockParameterError

__all__ = [
    "MockConfig",
    "ScalingConfig",
    "IcmConfig",
    "XrayConfig",
    "AgnConfig",
    "GalaxyConfig",
    "AssemblyConfig",
    "PRESETS",
    "PAPER_REDSHIFTS",
    "deep_update",
    "NPIX",
    "HALF_WIDTH_MPC_H",
    "PIXEL_MPC_H",
    "SCATTER_ORDER",
]

NPIX = 128
"""Pixels per map side (Ho et al. 2023)."""
HALF_WIDTH_MPC_H = 2.3
"""Half-width of a map, comoving [h^-1 Mpc] (Ho et al. 2023)."""
PIXEL_MPC_H = 2 * HALF_WIDTH_MPC_H / NPIX
"""Pixel side, comoving [h^-1 Mpc] (0.0359)."""
ARF_RANGE_KEV = (0.2, 10.0)
"""Energies over which the vendored eFEDS ARF and the absorption model are used [keV]."""
SCATTER_ORDER = ("T", "L_ce", "M_gas", "M_star", "N_gal", "sigma_v")
"""Order of the quantities in :attr:`ScalingConfig.correlation`."""


def deep_update(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in recursively (nested mappings merge, others replace)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """List the valid field names of the (nested) model at ``loc`` (for error messages)."""
    cls: Any = model
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            break
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            cls = ann
        else:
            break
    return sorted(getattr(cls, "model_fields", {}))


class _Strict(BaseModel):
    """Frozen, extra-forbidding base whose validation errors become :class:`MockParameterError`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _as_parameter_error(type(self), exc) from exc


def _as_parameter_error(model: type[BaseModel], exc: ValidationError) -> MockParameterError:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    name = ".".join(str(p) for p in loc) or model.__name__
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, MockParameterError):  # a nested model's own error: keep its name
        return MockParameterError(".".join([*map(str, loc), inner.parameter]), inner.detail)
    if first["type"] == "extra_forbidden":
        valid = _field_names(model, loc[:-1])
        msg = f"unknown parameter; valid parameters here: {', '.join(valid)}"
    else:
        msg = f"{first['msg']} (got {first.get('input')!r})"
    if len(errors) > 1:
        others = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[1:4])
        msg += f"; also: {others}"
    return MockParameterError(name, msg)


class ScalingConfig(_Strict):
    """Mean scaling relations at fixed M500c and their correlated log-normal scatter.

    Masses in the literature relations are in Msun (h_70 normalisations are applied with the
    run's h; the few per cent difference is ignored); the catalogue stores h^-1 Msun.
    """

    lx_norm_erg_s: float = Field(
        0.514e44,
        gt=0,
        description="L_X[0.5-2 keV] at M500 = 2e14 Msun, z = 0 [erg/s]: Pratt+09 (A&A 498, 361) "
        "Table B.2, L[0.1-2.4]-M_Y Malmquist-bias corrected C = 0.83e44, times their "
        "L[0.5-2]/L[0.1-2.4] = 1.77/2.86 from the L-T rows (verified)",
    )
    lx_slope: float = Field(1.62, gt=0, description="L-M slope, Pratt+09 MB-corrected (verified)")
    lx_ez_power: float = Field(
        2.0, description="E(z) power of L at fixed M (soft-band self-similar: 2)"
    )
    mt_norm_msun: float = Field(
        3.84e14,
        gt=0,
        description="M500 at kT = 5 keV [Msun], Arnaud+05 (A&A 441, 893) full sample (recalled)",
    )
    mt_slope: float = Field(
        1.71, gt=0, description="M-T slope, Arnaud+05 full sample alpha = 1.71 +- 0.09 (verified)"
    )
    mgas_fraction_pivot: float = Field(
        0.08,
        gt=0,
        lt=0.2,
        description="M_gas/M500 at M500 = 1e14 Msun (f_gas ~0.12 at 1e15; Vikhlinin+09, "
        "Lovisari+15; recalled)",
    )
    mgas_slope: float = Field(1.2, gt=0, description="M_gas-M slope (Lovisari+15, recalled)")
    mstar_fraction_pivot: float = Field(
        0.05,
        gt=0,
        lt=0.2,
        description="Total stellar mass in R500 / M500 at 1e14 Msun (Kravtsov+18, recalled)",
    )
    mstar_slope: float = Field(0.59, gt=0, description="M_star-M slope (Kravtsov+18, recalled)")
    ngal_pivot: float = Field(
        80.0,
        gt=0,
        description="Median member count at M500c = 1e14 h^-1 Msun; set to the galaxy selection "
        "of Ho+23 (N_gal 28-520 over their mass range), not fitted to any proxy result",
    )
    ngal_slope: float = Field(
        1 / 1.356,
        gt=0,
        description="N-M slope = 1/F, McClintock+19 (MNRAS 482, 1352) F = 1.356 (verified)",
    )
    sigma_dm_15_km_s: float = Field(
        1082.9, gt=0, description="Evrard+08 (ApJ 672, 122) sigma_DM at h(z)M200c = 1e15 Msun"
    )
    sigma_dm_slope: float = Field(0.3361, gt=0, description="Evrard+08 slope (verified)")
    merger_sigma_boost_ln: float = Field(
        0.15,
        ge=0,
        description="Half-normal scale of the extra ln sigma_DM of merger transients (assumed "
        "form of Evrard+08's 10% high-dispersion tail)",
    )
    scatter: dict[str, float] = Field(
        default_factory=lambda: {
            "T": 0.12,
            "L_ce": 0.15,
            "M_gas": 0.10,
            "M_star": 0.12,
            "N_gal": 0.20,
            "sigma_v": 0.0426,
        },
        description="Intrinsic ln scatter at fixed mass. T: 0.10-0.15 (recalled); L_ce (the "
        "ambient, core-excised-like luminosity): Maughan 2007 11% L-Y_X core-excised (verified) "
        "with Y_X-M ~0.1 (recalled); M_gas: 0.10 (Mulroy+19 0.16+-0.03 observed, verified); "
        "M_star: Mulroy+19 K-band < 0.16 at 95% (verified); N_gal: 0.20 before Poisson "
        "(recalled); sigma_v: Evrard+08 0.0426 (verified)",
    )
    correlation: tuple[tuple[float, ...], ...] = Field(
        (
            (1.0, 0.5, 0.2, 0.0, 0.0, 0.0),
            (0.5, 1.0, 0.7, 0.0, 0.1, 0.0),
            (0.2, 0.7, 1.0, -0.5, 0.1, 0.0),
            (0.0, 0.0, -0.5, 1.0, 0.6, 0.0),
            (0.0, 0.1, 0.1, 0.6, 1.0, 0.0),
            (0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
        ),
        description="Correlation of the ln scatter, order T, L_ce, M_gas, M_star, N_gal, "
        "sigma_v. L-T positive (Mantz+16, sign verified, value recalled); L-M_gas +0.7 and "
        "T-M_gas +0.2 (positive X-ray correlations, Sereno+20 XXL, sign verified); M_gas-M_star "
        "-0.5 (hot/cold baryon anti-correlation, Farahi+19; Wu+15 -0.69 rank, verified); "
        "N_gal-M_star +0.6 (recalled); gas-richness +0.1 (Puddu & Andreon 2022, sign verified)",
    )

    @field_validator("scatter")
    @classmethod
    def _check_scatter(cls, v: dict[str, float]) -> dict[str, float]:
        missing = set(SCATTER_ORDER) - set(v)
        extra = set(v) - set(SCATTER_ORDER)
        if missing or extra:
            raise ValueError(
                f"needs exactly the keys {', '.join(SCATTER_ORDER)} (missing {sorted(missing)}, "
                f"unknown {sorted(extra)})"
            )
        bad = {k: s for k, s in v.items() if not (0 <= s < 3)}
        if bad:
            raise ValueError(f"ln scatters must be in [0, 3): {bad}")
        return v

    @field_validator("correlation")
    @classmethod
    def _check_correlation(cls, v: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
        r = np.asarray(v, dtype=float)
        k = len(SCATTER_ORDER)
        if r.shape != (k, k):
            raise ValueError(f"must be {k}x{k} (order {', '.join(SCATTER_ORDER)})")
        if not np.allclose(r, r.T) or not np.allclose(np.diag(r), 1.0):
            raise ValueError("must be symmetric with a unit diagonal")
        if np.any(np.abs(r) > 1) or np.linalg.eigvalsh(r).min() <= 0:
            raise ValueError("must be positive definite with |r| <= 1")
        return v


class IcmConfig(_Strict):
    """Intracluster-medium structure: cool cores, mergers, beta-model shapes, morphology."""

    cool_core_fraction: float = Field(
        0.35,
        ge=0,
        le=1,
        description="Fraction of all clusters with a cool core. Chen+07 find 49% in the "
        "flux-limited HIFLUGCS (verified), biased high by X-ray selection; SZ/mass-selected "
        "samples give ~30-40% (recalled)",
    )
    beta_mean: float = Field(0.67, gt=0.55, lt=1.2, description="Beta-model slope (~2/3)")
    beta_sd: float = Field(0.05, ge=0, lt=0.2, description="Cluster-to-cluster spread of beta")
    beta_log_t_slope: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="d beta / d log10(T / 5 keV): group profiles are flatter (Sanderson+03 beta "
        "rising with T; Sun+09 groups; recalled)",
    )
    rc_residual_scatter_ln: float = Field(
        0.1,
        ge=0,
        lt=2,
        description="ln scatter of r_c/R500c beyond its concentration dependence (v2; assumed)",
    )
    lx_residual_scatter_ln: float = Field(
        0.05,
        ge=0,
        lt=2,
        description="ln scatter of the ambient luminosity beyond gas fraction and profile "
        "shape (v2; assumed small: the L-M scatter comes from the gas)",
    )
    rc_median_r500: float = Field(
        0.18, gt=0, lt=1, description="Ambient core radius / R500 (NCC-like; recalled)"
    )
    rc_scatter_ln: float = Field(0.25, ge=0, lt=2, description="ln scatter of the core radius")
    cc_lum_ratio_median: float = Field(
        0.3,
        gt=0,
        description="Cool-core component L(<R500) / ambient L(<R500). Set by the measured "
        "relaxed-disturbed offset: relaxed clusters are ~30% brighter at fixed mass (Lovisari+20; "
        "science.md). v1 used 0.8 (recalled: 40-60% of L inside 0.15 R500 for cool cores), "
        "which made cool cores ~1.8-2x brighter",
    )
    cc_lum_ratio_scatter_ln: float = Field(0.4, ge=0, lt=2, description="ln scatter of that")
    cc_rc_median_r500: float = Field(
        0.035, gt=0, lt=0.5, description="Core radius of the cool-core component / R500"
    )
    cc_beta: float = Field(0.7, gt=0.55, lt=1.5, description="Beta of the cool-core component")
    cc_temperature_ratio: float = Field(
        0.6,
        gt=0,
        le=1,
        description="kT of the cool-core gas / kT (Vikhlinin+06 central T drop, recalled)",
    )
    axis_ratio_relaxed: tuple[float, float] = Field(
        (0.7, 1.0), description="Uniform range of the projected axis ratio, relaxed (recalled)"
    )
    axis_ratio_merger: tuple[float, float] = Field(
        (0.5, 0.9), description="Uniform range of the projected axis ratio, mergers"
    )
    offset_relaxed_r500: float = Field(
        0.01, ge=0, lt=1, description="Rayleigh scale of the X-ray centroid offset / R500"
    )
    offset_disturbed_r500: float = Field(
        0.05, ge=0, lt=1, description="Same for non-cool-core and merging clusters (recalled)"
    )
    sub_mass_ratio: tuple[float, float] = Field(
        (0.1, 0.5), description="Uniform range of subcluster M500 / main M500 for mergers"
    )
    sub_separation_r500: tuple[float, float] = Field(
        (0.3, 1.5), description="Uniform range of projected subcluster distance / R500"
    )

    @field_validator("axis_ratio_relaxed", "axis_ratio_merger", "sub_mass_ratio")
    @classmethod
    def _unit_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1] <= 1:
            raise ValueError("must satisfy 0 < low <= high <= 1")
        return v

    @field_validator("sub_separation_r500")
    @classmethod
    def _pos_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1] <= 5:
            raise ValueError("must satisfy 0 <= low <= high <= 5")
        return v


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


class AssemblyConfig(_Strict):
    """Halo assembly: concentration scatter, accretion histories, mergers (mocks/assembly.py).

    The gas inherits them: cool cores, gas fraction and non-thermal pressure (mocks/generate.py).
    """

    concentration_scatter_dex: float = Field(
        0.14,
        ge=0,
        lt=0.5,
        description="Scatter of log10 c200c at fixed mass about the diemer19 mean: "
        "Bhattacharya+13 (ApJ 766, 32) sigma_ln c ~0.33 = 0.14 dex; Diemer & Kravtsov 2015 "
        "~0.16 dex for all halos (recalled)",
    )
    wechsler_c1: float = Field(
        4.1, gt=0, description="c_vir = c1 a_obs / a_c (Wechsler+02, ApJ 568, 52, eq. 8; recalled)"
    )
    fmbk_a: float = Field(0.0104, gt=0, description="Fakhouri+10 (MNRAS 406, 2267) eq. 1: A")
    fmbk_alpha: float = Field(0.133, description="Fakhouri+10 mass exponent (recalled)")
    fmbk_beta: float = Field(-1.995, description="Fakhouri+10 mass-ratio slope (recalled)")
    fmbk_gamma: float = Field(0.263, description="Fakhouri+10 exponential index (recalled)")
    fmbk_eta: float = Field(0.0993, description="Fakhouri+10 (1+z) exponent (recalled)")
    fmbk_xi_tilde: float = Field(9.72e-3, gt=0, description="Fakhouri+10 xi-tilde (recalled)")
    merger_min_ratio: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Smallest mass ratio counted as a visible merger (the subcluster range "
        "of icm.sub_mass_ratio starts there)",
    )
    merger_visible_crossings: float = Field(
        1.0,
        gt=0,
        le=10,
        description="A merger disturbs the X-ray image for this many crossing times "
        "R200c/V200c = 1/(10 H(z)) (Ricker & Sarazin 2001: relaxation in ~1-2; recalled)",
    )
    peculiar_velocity_km_s: float = Field(
        260.0,
        ge=0,
        le=3000,
        description="1D rms peculiar velocity of cluster halos [km/s] (3D ~450, Sheth & "
        "Diaferio 2001, recalled): the comoving drift between snapshots",
    )
    cool_core_assembly_correlation: float = Field(
        0.5,
        ge=-1,
        le=1,
        description="Correlation of the cool-core latent with early formation (assumed "
        "strength; sign: cool cores are relaxed, early-forming systems, Burns+08, Rasia+15)",
    )
    fgas_concentration_correlation: float = Field(
        -0.3,
        ge=-1,
        le=1,
        description="Correlation of ln f_gas with early formation at fixed mass (sign: AGN "
        "feedback acting longer in early-formed halos lowers f_gas, Magneticum, Ragagnin+22; "
        "value assumed)",
    )
    nonthermal_fraction: float = Field(
        0.15,
        ge=0,
        lt=0.6,
        description="Mean non-thermal pressure fraction at R500c (Nelson+14, recalled); it "
        "scales with the accretion rate, and T scales with 1 - f_nt (hydrostatic equilibrium)",
    )


class MockConfig(_Strict):
    """All parameters of a mock catalogue run.

    Examples
    --------
    >>> cfg = MockConfig(n_clusters=100, seed=3)
    >>> cfg = MockConfig.from_yaml("configs/mock_default.yaml", n_clusters=10)
    """

    n_clusters: int = Field(3300, gt=0, le=1_000_000, description="Clusters to generate")
    seed: int = Field(1, ge=0, le=2**63 - 1, description="Master random seed")
    box_size: float = Field(
        352.0, gt=10, le=10_000, description="Comoving box side [h^-1 Mpc] (Magneticum Box2/hr)"
    )
    snapshot_redshifts: tuple[float, ...] = Field(
        tuple(float(round(z, 4)) for z in np.linspace(0.066, 0.47, 11)),
        description="Snapshot redshifts (Ho+23: 11 snapshots, z = 0.066-0.47)",
    )
    log10_m500c_min: float = Field(
        13.5, ge=12.0, le=16.0, description="Lower limit of log10 M500c [h^-1 Msun]"
    )
    log10_m500c_max: float = Field(
        15.8, ge=12.0, le=16.5, description="Upper limit of the mass-function integral"
    )
    cosmology: Literal["Planck18", "Planck15", "WMAP9"] = Field(
        "Planck18", description="astropy cosmology (sigma8, n_s from colossus's same-named set)"
    )
    mass_function: Literal["tinker08"] = Field("tinker08", description="colossus HMF model")
    concentration_model: Literal["diemer19", "duffy08", "child18"] = Field(
        "diemer19", description="colossus c(M) model for c200c"
    )
    batch_size: int = Field(
        64, ge=1, le=4096, description="Clusters per vectorised batch (part of the RNG layout)"
    )
    compress_maps: bool = Field(False, description="RICE-compress the map HDUs when writing")
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    icm: IcmConfig = Field(default_factory=IcmConfig)
    xray: XrayConfig = Field(default_factory=XrayConfig)
    agn: AgnConfig = Field(default_factory=AgnConfig)
    galaxies: GalaxyConfig = Field(default_factory=GalaxyConfig)
    assembly: AssemblyConfig = Field(default_factory=AssemblyConfig)
    preset: Literal["erass", "paper"] = Field(
        "erass",
        description="erass: eROSITA-depth maps with sky and particle backgrounds; paper: the "
        "regime of Ho+23 (ICM + AGN photons only, their 11 snapshot redshifts)",
    )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> MockConfig:
        """Return the config of a preset (``erass`` or ``paper``) with ``overrides`` merged in."""
        if name not in PRESETS:
            raise MockParameterError("preset", f"unknown {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**deep_update(deep_update({}, PRESETS[name]), overrides))

    @field_validator("snapshot_redshifts")
    @classmethod
    def _check_z(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) == 0:
            raise ValueError("needs at least one redshift")
        for z in v:
            if not 0.01 <= z <= 1.5:
                raise ValueError(f"redshift {z} out of range: allowed 0.01 <= z <= 1.5")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("redshifts must be strictly increasing")
        return v

    @model_validator(mode="after")
    def _mass_range(self) -> MockConfig:
        if not self.log10_m500c_min < self.log10_m500c_max:
            raise ValueError("log10_m500c_min must be < log10_m500c_max")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> MockConfig:
        """Load a YAML file and deep-merge keyword ``overrides`` into it.

        Parameters
        ----------
        path : str or Path
            YAML mapping of config fields (nested sections as mappings).
        **overrides
            Values replacing those of the file (nested mappings merge recursively).

        Raises
        ------
        FileNotFoundError
            The file does not exist.
        MockParameterError
            The file is not a mapping, or a value is invalid (the parameter is named).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"mock config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, Mapping):
            raise MockParameterError(str(path), "the YAML file must hold a mapping of parameters")
        return cls(**deep_update(data, overrides))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every parameter (tuples become lists)."""
        return self.model_dump(mode="json")


#: Snapshot redshifts of Ho+23 (Magneticum Box2/hr snapshots 136 ... 96; their notebook).
PAPER_REDSHIFTS = (
    0.066340191,
    0.10114286,
    0.13708140,
    0.17419289,
    0.21251560,
    0.25208907,
    0.29295412,
    0.33515290,
    0.37872894,
    0.42372720,
    0.47019408,
)

#: Presets: mappings of config fields (overrides merge on top).
PRESETS: dict[str, dict[str, Any]] = {
    "erass": {"preset": "erass"},
    "paper": {
        "preset": "paper",
        "snapshot_redshifts": PAPER_REDSHIFTS,
        "xray": {"diffuse_background": False},
    },
}
