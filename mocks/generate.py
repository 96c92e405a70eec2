"""The mock generator: halo population, then vectorised batches of clusters per snapshot.

Random numbers: one ``SeedSequence(seed)``; the halo population uses spawn key (0,), the batch
``b`` of snapshot ``s`` uses (1, s, b). A catalogue therefore depends on the seed and on the
config (``batch_size`` included), not on the machine or on how often progress is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from mocks import icm as icm_mod
from mocks import scaling
from mocks.catalogue import MockCatalogue, build_truth
from mocks.config import HALF_WIDTH_MPC_H, NPIX, PIXEL_MPC_H, MockConfig
from mocks.galaxies import GALAXY_DTYPE, sample_galaxies
from mocks.halos import get_cosmology, r_delta_proper, use_colossus
from mocks.population import Population, sample_population
from mocks.snapshot import Snapshot
from mocks.spectra import powerlaw_band_rates, thermal_band_rates, thermal_observed_flux
from mocks.xray import (
    bin_photons,
    extended_photons,
    point_photons,
    sample_fluxes,
    sampling_radius,
    uniform_background,
)

__all__ = ["generate", "Population", "sample_population", "cool_core_threshold"]

log = logging.getLogger(__name__)

MAPS = ("total", "agn", "icm")
_PIX_CENTRES = (np.arange(NPIX) + 0.5) * PIXEL_MPC_H - HALF_WIDTH_MPC_H
_R2 = _PIX_CENTRES[None, :] ** 2 + _PIX_CENTRES[:, None] ** 2  # (row = y, column = x)


def _batch(
    cfg: MockConfig,
    snap: Snapshot,
    pop: Population,
    rows: NDArray,
    key: int,
    out_total: NDArray[np.int32],
    out_agn: NDArray[np.int32],
    out_icm: NDArray[np.int32],
    cc_threshold: float,
    merger_ln_boost_mean: float,
) -> dict:
    """Generate the clusters ``rows`` of one snapshot.

    The maps are written into ``out_*`` (views of shape (len(rows), n_band, NPIX, NPIX));
    returns the truth arrays and the galaxies (cluster_index local to the batch).
    """
    from colossus.lss import bias

    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1, snap.index, key)))
    sc, ic, xc, gc = cfg.scaling, cfg.icm, cfg.xray, cfg.galaxies
    cosmo = get_cosmology(cfg.cosmology)
    h, z, ez = cosmo.h, snap.z, snap.ez
    n = rows.size
    m500, m200, c200 = pop.m500c[rows], pop.m200c[rows], pop.c200c[rows]
    r500 = r_delta_proper(cosmo, m500, z, 500.0)
    r200 = r_delta_proper(cosmo, m200, z, 200.0)
    r500_com = r500 * (1 + z)

    # dynamical state from assembly (mocks.assembly): mergers follow the accretion rate;
    # cool cores are the most relaxed non-merging halos (persistent across snapshots)
    merger = pop.merger[rows]
    xi = pop.merger_ratio[rows]
    boost_l, boost_t = icm_mod.merger_boosts(xi, pop.t_since_merger[rows], cfg.icm)
    cool_core = ~merger & (pop.relax[rows] > cc_threshold)
    ac = cfg.assembly
    c_ratio = 10 ** (ac.concentration_scatter_dex * pop.delta[rows])  # c200c / <c200c | M, z>
    acc_ratio = (1 / c_ratio) / np.exp(0.5 * (ac.concentration_scatter_dex * np.log(10)) ** 2)

    # correlated residual scatter at fixed mass (T, L, M_star, N_gal, sigma_v columns)
    d = scaling.correlated_scatter(rng, n, sc)
    # temperature: Arnaud+05 mean, hydrostatic kT proportional to 1 - f_nt (non-thermal
    # pressure rising with the accretion rate, Nelson+14), residual scatter
    f_nt = np.clip(ac.nonthermal_fraction * acc_ratio, 0.0, 0.6)
    kt = np.exp(
        scaling.mean_ln_t(m500, ez, h, sc) + np.log((1 - f_nt) / (1 - ac.nonthermal_fraction))
        + d[:, 0]
    )  # fmt: skip
    # gas: f_gas(M) with its assembly-correlated deviate; profile shape from the halo
    ln_fgas_mean = scaling.mean_ln_mgas(m500, h, sc) - np.log(m500)
    ln_fgas = ln_fgas_mean + sc.scatter["M_gas"] * pop.fgas_dev[rows]
    m_gas = np.exp(ln_fgas) * m500
    t_mean = np.exp(scaling.mean_ln_t(m500, ez, h, sc))
    beta_mean = ic.beta_mean + ic.beta_log_t_slope * np.log10(t_mean / 5.0)
    beta = (
        beta_mean
        + ic.beta_log_t_slope * np.log10(kt / t_mean)
        + ic.beta_sd * (rng.standard_normal(n))
    )
    rc_x = ic.rc_median_r500 / c_ratio * np.exp(ic.rc_residual_scatter_ln * rng.standard_normal(n))
    beta = np.clip(beta, 0.56, 1.1)
    rc_x = np.clip(rc_x, 0.03, 0.6)
    # merger transient (Ricker & Sarazin 2001; off by default: boost_t = 1): the ambient gas is
    # hotter than in equilibrium (the profile shape above is the equilibrium one)
    kt = kt * boost_t
    # luminosity from the gas: L ~ M_gas^2 x (emission-measure shape at fixed M_gas, R500c);
    # the population mean stays on Pratt+09 (the absolute emissivity, lines and clumping
    # included, is the observed one); cool cores add their component on top and mergers the
    # transient light of their compressed cores, both as scatter without bias
    shape = icm_mod.emission_shape(rc_x, beta) / icm_mod.emission_shape(
        np.full(n, ic.rc_median_r500), np.clip(beta_mean, 0.56, 1.1)
    )
    boost = scaling.mean_ln_cool_core_boost(ic)
    lum_amb = np.exp(
        scaling.mean_ln_lx(m500, ez, h, sc) - boost - merger_ln_boost_mean
        + 2 * (ln_fgas - ln_fgas_mean) + np.log(shape)
        + ic.lx_residual_scatter_ln * d[:, 1] / max(sc.scatter["L_ce"], 1e-12)
    )  # fmt: skip
    cc_ratio = np.where(
        cool_core,
        ic.cc_lum_ratio_median * np.exp(ic.cc_lum_ratio_scatter_ln * rng.standard_normal(n)),
        0.0,
    )
    m_star = np.exp(scaling.mean_ln_mstar(m500, h, sc) + d[:, 3])
    n_expected = np.exp(scaling.mean_ln_ngal(m500, sc) + d[:, 4])
    tail = np.where(merger, np.abs(rng.normal(0.0, sc.merger_sigma_boost_ln, n)), 0.0)
    sigma_dm = np.exp(scaling.mean_ln_sigma_dm(m200, ez, sc) + d[:, 5] + tail)

    # merging subcluster (only used where merger): mass ratio from the FMBK10 kernel and
    # position on its orbit since the core passage (mocks/assembly.py)
    m_sub = np.where(merger, xi, cfg.assembly.merger_min_ratio) * m500
    sub_lum = np.exp(
        scaling.mean_ln_lx(m_sub, ez, h, sc) - boost + sc.scatter["L_ce"] * rng.standard_normal(n)
    )
    sub_kt = np.exp(scaling.mean_ln_t(m_sub, ez, h, sc))
    sub_r500_com = r_delta_proper(cosmo, m_sub, z, 500.0) * (1 + z)

    # survey conditions
    exposure = xc.exposure_median_s * np.exp(xc.exposure_scatter_ln * rng.standard_normal(n))
    nh = xc.nh_median_cm2 * np.exp(xc.nh_scatter_ln * rng.standard_normal(n))

    # ---- ICM photons
    comps = icm_mod.build_components(
        rng, ic, r500_com, lum_amb, kt, cool_core, merger, cc_ratio, sub_lum, sub_kt,
        sub_r500_com, rc_r500=rc_x, beta=beta,
        merger_core_lum=(boost_l - 1.0) * lum_amb,
        sub_offset=icm_mod.subcluster_offset(
            pop.merger_phase[rows], pop.merger_orient[rows], r500_com, ic
        ),
    )  # fmt: skip
    r_max = sampling_radius(comps, margin=10 * snap.optics.psf_rc)
    # count rates per unit luminosity, then scaled to the luminosity inside r_max
    rate_per_lum = thermal_band_rates(
        snap.response, np.ones(len(comps)), comps.kt, z, snap.d_m_cm, nh[comps.cluster]
    )
    rates = rate_per_lum * comps.luminosity_within(r_max)[:, None]
    icm_counts = rng.poisson(rates * exposure[comps.cluster, None])
    icm_flat = extended_photons(rng, comps, icm_counts, snap.optics, r_max)

    # ---- galaxies
    use_colossus(cfg.cosmology)
    b_halo = np.asarray(bias.haloBias(m200, z, "200c", model="tinker10"), dtype=float)
    gal = sample_galaxies(
        rng, gc, snap.field, n_expected, gc.velocity_bias * sigma_dm, r200 * (1 + z), c200, b_halo
    )

    # ---- AGN: field sources over the map plus a margin, and AGN in member galaxies
    ac = cfg.agn
    n_src = rng.poisson(snap.agn_per_deg2 * snap.padded_area_deg2(), n)
    src_cl = np.repeat(np.arange(n), n_src)
    half = HALF_WIDTH_MPC_H + snap.agn_pad
    sx, sy = rng.uniform(-half, half, (2, src_cl.size))
    s_flux = sample_fluxes(rng, src_cl.size, ac)
    src_rate = s_flux[:, None] * powerlaw_band_rates(snap.response, ac.photon_index, nh)[src_cl]
    hosts = np.flatnonzero(rng.random(gal.member_cluster.size) < ac.cluster_fraction)
    host_cl = gal.member_cluster[hosts]
    p = 1.0 - ac.cluster_lf_slope
    lum = (
        ac.cluster_lmin**p + rng.random(hosts.size) * (ac.cluster_lmax**p - ac.cluster_lmin**p)
    ) ** (1 / p)
    host_flux = lum / (4 * np.pi * snap.d_l_cm**2) * (1 + z) ** (ac.cluster_photon_index - 2)
    host_rate = (
        host_flux[:, None]
        * powerlaw_band_rates(snap.response, ac.cluster_photon_index, nh)[host_cl]
    )
    src_counts = rng.poisson(src_rate * exposure[src_cl, None])
    host_counts = rng.poisson(host_rate * exposure[host_cl, None])
    agn_runs = [
        point_photons(rng, src_cl, sx, sy, src_counts, snap.optics),
        point_photons(
            rng, host_cl, gal.member_x[hosts], gal.member_y[hosts], host_counts, snap.optics
        ),
    ]

    # ---- diffuse background and binning
    bkg_pix = snap.background_per_pixel(exposure, nh)
    icm_map, agn_map, total = out_icm, out_agn, out_total
    bin_photons([icm_flat], icm_map)
    bin_photons(agn_runs, agn_map)
    uniform_background(rng, bkg_pix, total)
    total += icm_map
    total += agn_map

    # ---- observables measured on the maps
    aperture = _R2[None, :, :] < r500_com[:, None, None] ** 2
    n_ap = aperture.sum(axis=(1, 2))
    tot_pix = total.sum(axis=1, dtype=np.int64)
    n_phot = tot_pix.reshape(n, -1).sum(axis=1)
    n_phot_500 = np.einsum("nyx,nyx->n", tot_pix, aperture.astype(np.int64))
    mean_sky = (bkg_pix + snap.field_agn_per_pixel(exposure, nh)).sum(axis=1)  # per pixel

    main = comps.kind != icm_mod.SUBCLUSTER
    r500_c = r500_com[comps.cluster]
    lum500 = np.bincount(comps.cluster[main], comps.lum500[main], minlength=n)
    # surface-brightness concentration c_SB = L(<40 kpc) / L(<400 kpc), projected, physical radii
    # (Santos et al. 2008), from the emission model before PSF and pixels (40 kpc is < 1 pixel)
    kpc_com = 1e-3 * (1 + z) * h  # 1 physical kpc in comoving h^-1 Mpc
    l40 = np.bincount(
        comps.cluster[main],
        comps.luminosity_within(np.full(len(comps), 40 * kpc_com))[main],
        minlength=n,
    )
    l400 = np.bincount(
        comps.cluster[main],
        comps.luminosity_within(np.full(len(comps), 400 * kpc_com))[main],
        minlength=n,
    )
    lum_core = np.bincount(
        comps.cluster[main], comps.luminosity_within(0.15 * r500_c)[main], minlength=n
    )
    rate500 = rate_per_lum * comps.lum500[:, None]
    cts500 = np.bincount(
        comps.cluster[main], rate500[main].sum(axis=1) * exposure[comps.cluster[main]], minlength=n
    )
    flux500 = np.bincount(
        comps.cluster[main],
        thermal_observed_flux(comps.lum500[main], comps.kt[main], z, snap.d_m_cm),
        minlength=n,
    )
    truth = dict(
        snapshot=np.full(n, snap.index),
        halo_id=pop.halo_id[rows],
        redshift=np.full(n, z),
        pos=pop.pos[rows],
        m500c=m500,
        r500c=r500,
        m200c=m200,
        r200c=r200,
        c200c=c200,
        z_form=pop.z_form[rows],
        accretion_rate=pop.accretion_rate[rows],
        f_gas=m_gas / m500,
        f_nt=f_nt,
        T=kt,
        L_X=lum500,
        M_gas=m_gas,
        M_star=m_star,
        N_gal=gal.n_members,
        N_gal_obs=gal.n_in_cylinder,
        sigma_v_true=gal.sigma_v_true,
        sigma_v_obs=gal.sigma_v_obs,
        N_phot=n_phot,
        N_phot_500c=n_phot_500,
        N_phot_bkgsub=n_phot - mean_sky * NPIX * NPIX,
        N_phot_500c_bkgsub=n_phot_500 - mean_sky * n_ap,
        N_phot_icm=icm_map.sum(axis=(1, 2, 3), dtype=np.int64),
        N_phot_agn=agn_map.sum(axis=(1, 2, 3), dtype=np.int64),
        L_X_ce=lum500 - lum_core,
        L_X_core=lum_core,
        c_SB=l40 / l400,
        F_X=flux500,
        cts_icm_500c_expected=cts500,
        cool_core=cool_core,
        merger=merger,
        merger_ratio=xi,
        t_since_merger=pop.t_since_merger[rows],
        merger_boost_L=boost_l,
        merger_boost_T=boost_t,
        sigma_dm=sigma_dm,
        n_agn_field=n_src,
        n_agn_cluster=np.bincount(host_cl, minlength=n),
        exposure=exposure,
        nH=nh,
        bkg_per_pixel=bkg_pix,
        pixscale_arcsec=np.full(n, snap.optics.pix_arcsec),
        psf_hew_arcsec=np.full(n, xc.psf_hew_arcsec),
        n_expected_members=n_expected,
        halo_bias=b_halo,
    )
    truth.update(_component_truth(comps, n))
    return dict(truth=truth, galaxies=gal.galaxies, components=comps)


def _component_truth(comps: icm_mod.Components, n: int) -> dict[str, NDArray]:
    """Shape parameters of the ambient and cool-core components and the subcluster luminosity."""
    out: dict[str, NDArray] = {}
    amb = comps.kind == icm_mod.AMBIENT
    ia = comps.cluster[amb]
    for name, col in (
        ("rc_ambient", comps.rc),
        ("beta_ambient", comps.beta),
        ("axis_ratio", comps.q),
        ("position_angle", comps.theta),
        ("offset_x", comps.x0),
        ("offset_y", comps.y0),
    ):
        arr = np.full(n, np.nan)
        arr[ia] = col[amb]
        out[name] = arr
    cc = comps.kind == icm_mod.COOL_CORE
    arr = np.full(n, np.nan)
    arr[comps.cluster[cc]] = comps.rc[cc]
    out["rc_cool_core"] = arr
    sub = comps.kind == icm_mod.SUBCLUSTER
    arr = np.zeros(n)
    arr[comps.cluster[sub]] = comps.lum500[sub]
    out["L_X_sub"] = arr
    sep = np.full(n, np.nan)
    main_x, main_y = out["offset_x"][comps.cluster[sub]], out["offset_y"][comps.cluster[sub]]
    sep[comps.cluster[sub]] = np.hypot(comps.x0[sub] - main_x, comps.y0[sub] - main_y)
    out["sub_separation"] = sep
    return out


def cool_core_threshold(pop: Population, fraction: float) -> float:
    """Relaxation latent above which a non-merging halo hosts a cool core.

    Chosen so that ``fraction`` of all rows are cool cores (the fraction shows no strong mass
    dependence, Lovisari+17); one threshold for the run keeps a halo's state across snapshots.
    """
    calm = pop.relax[~pop.merger]
    if calm.size == 0 or fraction <= 0:
        return float("inf")
    keep = min(fraction * pop.relax.size / calm.size, 1.0)
    return float(np.quantile(calm, 1.0 - keep)) if keep < 1 else float("-inf")


def generate(cfg: MockConfig, progress: Callable[[int], None] | None = None) -> MockCatalogue:
    """Generate a mock eROSITA-like cluster catalogue.

    Parameters
    ----------
    cfg : MockConfig
        Run parameters (seed included).
    progress : callable, optional
        Called with the number of clusters finished so far, after every batch.

    Returns
    -------
    MockCatalogue
        Truth table, count maps (total, AGN-only, ICM-only) and the galaxy catalogue.
    """
    cosmo = get_cosmology(cfg.cosmology)
    pop = sample_population(cfg)
    cc_threshold = cool_core_threshold(pop, cfg.icm.cool_core_fraction)
    # population mean of the merger L_X boost: removed from every cluster's normalisation so
    # that <ln L_X | M> stays on the observed relation (which includes mergers), as for cool cores
    ln_boost = float(
        np.mean(np.log(icm_mod.merger_boosts(pop.merger_ratio, pop.t_since_merger, cfg.icm)[0]))
    )
    nb = len(cfg.xray.bands_kev)
    maps = {k: np.zeros((cfg.n_clusters, nb, NPIX, NPIX), dtype=np.int32) for k in MAPS}
    results = []
    for s in range(len(cfg.snapshot_redshifts)):
        rows = np.flatnonzero(pop.snapshot == s)
        if rows.size == 0:
            continue
        snap = Snapshot.build(cfg, cosmo, s)
        for b, start in enumerate(range(0, rows.size, cfg.batch_size)):
            part = rows[start : start + cfg.batch_size]
            sl = slice(part[0], part[-1] + 1)  # rows of a snapshot are contiguous
            res = _batch(
                cfg, snap, pop, part, b, maps["total"][sl], maps["agn"][sl], maps["icm"][sl],
                cc_threshold, ln_boost,
            )  # fmt: skip
            res["offset"] = part[0]
            results.append(res)
            if progress is not None:
                progress(int(part[-1]) + 1)
        log.info("snapshot %d (z = %.3f): %d clusters", s, snap.z, rows.size)
    return _assemble(cfg, cosmo, results, maps)


def _assemble(cfg: MockConfig, cosmo, results: list[dict], maps: dict) -> MockCatalogue:  # noqa: ANN001
    keys = results[0]["truth"].keys()
    truth = {k: np.concatenate([r["truth"][k] for r in results]) for k in keys}
    gal_parts = []
    for r in results:
        g = r["galaxies"]
        g["cluster_index"] += r["offset"]
        gal_parts.append(g)
    galaxies = np.concatenate(gal_parts) if gal_parts else np.zeros(0, GALAXY_DTYPE)
    comps = [r["components"] for r in results]
    fields = icm_mod.Components.__dataclass_fields__
    components = icm_mod.Components(
        **{
            k: np.concatenate(
                [getattr(c, k) + (r["offset"] if k == "cluster" else 0) for c, r in zip(
                    comps, results, strict=True)]
            )
            for k in fields
        }
    )  # fmt: skip
    return MockCatalogue(
        config=cfg,
        cosmology=cosmo,
        truth=build_truth(truth, cfg),
        counts_total=maps["total"],
        counts_agn=maps["agn"],
        counts_icm=maps["icm"],
        galaxies=galaxies,
        icm_components=components,
    )
