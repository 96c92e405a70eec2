"""Halo and gas sections of the mock configuration: scaling relations, ICM structure, assembly.

Every number carries its unit and source in its description (docs/mocks.md has the table).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator, model_validator

from mocks.config_base import SCATTER_ORDER, _Strict

__all__ = ["ScalingConfig", "IcmConfig", "AssemblyConfig"]


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
    sub_apocentre_r500: float = Field(
        1.5,
        gt=0,
        le=5,
        description="Apocentre of the subcluster's orbit after the first core passage / R500c of "
        "the main halo: 3D separation r(t) = r_apo sin(pi t / t_vis), so the subcluster leaves "
        "the core, turns round and is back at the second pericentre at the end of the "
        "visibility window (Poole+06: traces of the secondary vanish after the second "
        "pericentric passage; the apocentre ~R200c ~ 1.5 R500c, recalled)",
    )
    merger_lx_boost_equal_mass: float = Field(
        1.0,
        ge=1,
        le=50,
        description="Peak L_X / pre-merger L_X at the core passage of a 1:1 merger; 1 = no "
        "transient boost (the default, docs/mocks.md 'Merger boosts: off by default'). Ricker & "
        "Sarazin 2001 (ApJ 561, 621) find L_X jumps of ~4-10x for 1:1-1:3 head-on mergers, "
        "relative to the *primary before the merger*, in idealised runs; applied at the final "
        "mass they double count the mass gained and push the mock's L-M and T-M scatter and "
        "merger offsets out of the observed ranges, and cosmological simulations find recent "
        "mergers cooler, not hotter, at fixed mass (Mathiesen & Evrard 2001). 10 (with "
        "merger_lx_boost_one_third 4, merger_t_boost_equal_mass 3) reproduces RS01 as read",
    )
    merger_lx_boost_one_third: float = Field(
        1.0,
        ge=1,
        le=50,
        description="Peak L_X boost of a 1:3 merger (1 = off, the default; 4 = the low end of "
        "Ricker & Sarazin 2001's 4-10x). When on, the peak boost is interpolated as ln B(xi) = "
        "ln B(1) xi^p with p fixed by the 1:1 and 1:3 values (10 and 4: p = 0.46, 2.2x at 1:10; "
        "an extrapolation below 1:3, not from a simulation)",
    )
    merger_t_boost_equal_mass: float = Field(
        1.0,
        ge=1,
        le=10,
        description="Peak T / pre-merger T at the core passage of a 1:1 merger (1 = off, the "
        "default; ~3 was recalled, not read, from Ricker & Sarazin 2001 / Randall, Sarazin & "
        "Ricker 2002); smaller ratios scale with the same xi^p as L_X",
    )
    merger_core_rc_r500: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="Core radius / R500c of the transient component that carries the merger's "
        "extra luminosity: the jump comes from the compressed cores at core passage (Ricker & "
        "Sarazin 2001), so it sits inside ~0.15 R500c and leaves the core-excised luminosity "
        "nearly untouched (Pratt+09: excising the core halves the L-M scatter). Size assumed, "
        "between the cool-core (0.035) and ambient (0.18) core radii",
    )
    merger_lx_decay_gyr: float = Field(
        0.5,
        gt=0,
        le=5,
        description="e-folding time of the L_X boost after core passage [Gyr]: the luminosity "
        "spike lasts a few hundred Myr around core passage (Ricker & Sarazin 2001 light curves; "
        "recalled)",
    )
    merger_t_decay_gyr: float = Field(
        1.0,
        gt=0,
        le=5,
        description="e-folding time of the T boost [Gyr]: shock-heated gas stays hot for about a "
        "sound-crossing time, ~1-2 Gyr (Ricker & Sarazin 2001; Randall+02; recalled)",
    )

    @field_validator("axis_ratio_relaxed", "axis_ratio_merger")
    @classmethod
    def _unit_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1] <= 1:
            raise ValueError("must satisfy 0 < low <= high <= 1")
        return v

    @model_validator(mode="after")
    def _boosts_ordered(self) -> IcmConfig:
        b1, b3 = self.merger_lx_boost_equal_mass, self.merger_lx_boost_one_third
        if b3 > b1:
            raise ValueError(
                "merger_lx_boost_one_third must not exceed merger_lx_boost_equal_mass "
                "(a smaller subcluster cannot boost L_X more)"
            )
        if (b3 == 1.0) != (b1 == 1.0):
            raise ValueError(
                "merger_lx_boost_one_third and merger_lx_boost_equal_mass must both be 1 (no "
                "boosts) or both exceed 1 (the xi^p interpolation needs two boosts)"
            )
        return self


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
        description="Smallest mass ratio xi = M2/M1 counted as a major (visible) merger; the "
        "subcluster's ratio is drawn from the Fakhouri+10 kernel xi^beta exp[(xi/xi_t)^gamma] "
        "restricted to [merger_min_ratio, 1]",
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
