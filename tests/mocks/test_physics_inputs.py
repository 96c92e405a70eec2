"""Physics helpers: radii, mass conversion, spectra, absorption, PSF, log N-log S."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.cosmology import Planck18
from scipy import integrate

from mocks import MockConfig, MockParameterError
from mocks import spectra as sp
from mocks.galaxies import nfw_radius
from mocks.halos import HaloMassFunction, allocate, m500c_to_m200c, nfw_mu, r_delta_proper
from mocks.xray import Optics, lognlogs_dnds, lognlogs_intensity, lognlogs_number, sample_fluxes

BANDS = ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0))


def test_r500c_from_definition() -> None:
    m, z = 1e14, 0.2
    r = r_delta_proper(Planck18, m, z)
    rho_c = Planck18.critical_density(z).to("Msun/Mpc3").value / Planck18.h**2
    assert 4 / 3 * np.pi * r**3 * 500 * rho_c == pytest.approx(m, rel=1e-10)


def test_negative_mass_and_bad_redshift_raise() -> None:
    with pytest.raises(MockParameterError, match="m500c"):
        r_delta_proper(Planck18, -1e14, 0.1)
    with pytest.raises(MockParameterError, match="m500c"):
        m500c_to_m200c([1e14, 0.0], 0.1)
    with pytest.raises(MockParameterError, match="redshift"):
        r_delta_proper(Planck18, 1e14, -0.5)


def test_m500_to_m200_is_consistent_with_nfw() -> None:
    m500 = np.array([3e13, 3e14, 2e15])
    m200, c = m500c_to_m200c(m500, 0.3)
    assert np.all((m200 / m500 > 1.2) & (m200 / m500 < 1.7))
    assert np.all((c > 2) & (c < 8))  # diemer19 c(M) flattens and turns up at high mass
    # the NFW profile with that c puts exactly M500c inside r500c
    r500 = r_delta_proper(Planck18, m500, 0.3, 500)
    r200 = r_delta_proper(Planck18, m200, 0.3, 200)
    frac = nfw_mu(c * r500 / r200) / nfw_mu(c)
    np.testing.assert_allclose(m200 * frac, m500, rtol=2e-3)


def test_mass_function_sampling_matches_table() -> None:
    hmf = HaloMassFunction.build(0.2, lgm_min=13.5, lgm_max=15.5)
    m = hmf.sample(20000, np.random.default_rng(3))
    frac_above = np.mean(m > 1e14)
    sel = hmf.ln_m > np.log(1e14)
    expected = np.trapezoid(hmf.dndlnm[sel], hmf.ln_m[sel]) / hmf.number_density()
    assert frac_above == pytest.approx(expected, abs=4 * np.sqrt(expected / 20000) + 0.003)
    assert allocate(10, [1, 1, 2]).tolist() == [3, 2, 5] or allocate(10, [1, 1, 2]).sum() == 10


def test_gaunt_factor_born_limits() -> None:
    # u << 1: (sqrt 3/pi) ln(4 / (gamma_E u)) (logarithmic rise); u >> 1: (sqrt3/pi) sqrt(pi/u)
    u_small, u_big = 1e-4, 50.0
    g_small = sp.gaunt_ff(u_small, 1.0)
    assert g_small == pytest.approx(
        np.sqrt(3) / np.pi * np.log(4 / (np.exp(np.euler_gamma) * u_small)), rel=1e-3
    )
    assert sp.gaunt_ff(u_big, 1.0) == pytest.approx(
        np.sqrt(3) / np.pi * np.sqrt(np.pi / u_big), rel=2e-2
    )


def test_absorption_cross_section_values() -> None:
    # Morrison & McCammon (1983): sigma(1 keV) = (120.6 + 169.3 - 47.7) 1e-24 cm^2
    assert sp.absorption_cross_section(1.0) == pytest.approx(242.2e-24)
    with pytest.raises(MockParameterError):
        sp.absorption_cross_section(0.01)


def test_band_fractions_harden_with_temperature_and_absorption() -> None:
    resp = sp.load_response(BANDS)
    d = Planck18.comoving_transverse_distance(0.1).to("cm").value
    rates = sp.thermal_band_rates(resp, np.ones(4), [1.0, 2.0, 4.0, 8.0], 0.1, d, np.zeros(4))
    frac = rates / rates.sum(axis=1, keepdims=True)
    assert np.all(np.diff(frac[:, 2]) > 0) and np.all(np.diff(frac[:, 0]) < 0)
    absorbed = sp.thermal_band_rates(resp, np.ones(1), [4.0], 0.1, d, [3e21])
    assert absorbed[0, 0] / rates[2, 0] < absorbed[0, 2] / rates[2, 2] < 1.0001


def test_counts_equal_flux_times_area_times_exposure(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a flat 1000 cm^2 ARF and no absorption, counts = t A F / <E> (independent integrals)."""
    resp = sp.load_response(BANDS)
    flat = sp.Response(resp.energy, resp.weight, np.full_like(resp.area, 1000.0), resp.sigma, BANDS)
    z, kt, lum, t = 0.0, 3.0, 1e44, 2000.0
    d = Planck18.comoving_transverse_distance(0.05).to("cm").value
    rate = sp.thermal_band_rates(flat, [lum], [kt], z, d, [0.0])[0]
    flux = lum / (4 * np.pi * d**2)  # z = 0 in the spectrum: D_L = D_M for the K correction
    shape = lambda e: sp.bremsstrahlung_photon_spectrum(e, kt)  # noqa: E731
    energy = integrate.quad(lambda e: e * shape(e), 0.5, 2.0)[0]
    for b, (lo, hi) in enumerate(BANDS):
        photons = integrate.quad(shape, lo, hi)[0]
        expected = t * 1000.0 * flux / sp.KEV_TO_ERG * photons / energy
        assert rate[b] * t == pytest.approx(expected, rel=2e-3)
    # power law: counts per unit flux, same independent check
    pl = sp.powerlaw_band_rates(flat, 1.4, [0.0])[0]
    norm = 1.0 / (integrate.quad(lambda e: e**-0.4, 0.5, 2.0)[0] * sp.KEV_TO_ERG)
    for b, (lo, hi) in enumerate(BANDS):
        assert pl[b] == pytest.approx(
            1000 * norm * integrate.quad(lambda e: e**-1.4, lo, hi)[0], rel=2e-3
        )


def test_observed_flux_is_luminosity_over_4pi_dl2_at_low_z() -> None:
    d = Planck18.comoving_transverse_distance(0.01).to("cm").value
    f = sp.thermal_observed_flux([1e44], [5.0], 0.01, d)[0]
    assert f == pytest.approx(1e44 / (4 * np.pi * (d * 1.01) ** 2), rel=0.03)


@pytest.mark.parametrize("z", [0.2, 0.47])
def test_icm_count_rates_at_redshift_are_luminosity_over_4pi_dl2_through_the_arf(z: float) -> None:
    """Independent route: the observed photon spectrum is the rest one redshifted,
    n(E) = A s(E (1 + z)), whose energy flux over the redshifted rest band [0.5, 2] / (1 + z) keV
    is L / (4 pi D_L^2) (astropy's D_L); fold it through the ARF and absorption by quadrature."""
    resp = sp.load_response(BANDS)
    kt, lum, nh = 4.0, 1e44, 3e20
    d_m = Planck18.comoving_transverse_distance(z).to("cm").value
    d_l = Planck18.luminosity_distance(z).to("cm").value
    rate = sp.thermal_band_rates(resp, [lum], [kt], z, d_m, [nh])[0]

    def observed(e: np.ndarray) -> np.ndarray:
        return sp.bremsstrahlung_photon_spectrum(e * (1 + z), kt)

    rest_band = np.geomspace(0.5 / (1 + z), 2.0 / (1 + z), 4001)
    energy_flux = np.trapezoid(rest_band * observed(rest_band), rest_band) * sp.KEV_TO_ERG
    norm = lum / (4 * np.pi * d_l**2) / energy_flux  # photons / s / cm^2 per unit of s
    arf_energy, arf_area = sp._arf()  # the vendored eFEDS ARF (SPECRESP / CORRPSF)
    for b, (lo, hi) in enumerate(BANDS):
        e = np.geomspace(lo, hi, 20001)
        folded = observed(e) * np.exp(-nh * sp.absorption_cross_section(e))
        expected = norm * np.trapezoid(folded * np.interp(e, arf_energy, arf_area), e)
        assert rate[b] == pytest.approx(expected, rel=2e-3)


def test_king_psf_has_the_requested_half_energy_width() -> None:
    opt = Optics.build(d_m=1000.0, hew_arcsec=26.0, psf_beta=1.5, n_band=3)
    dx, dy = opt.psf_offsets(np.random.default_rng(0), 200_000)
    r_half = np.median(np.hypot(dx, dy))
    hew_arcsec = 2 * r_half / 1000.0 * 206264.806
    assert hew_arcsec == pytest.approx(26.0, rel=0.01)


def test_lognlogs_sampling_and_integrals() -> None:
    agn = MockConfig().agn
    s = np.geomspace(agn.s_min, agn.s_max, 4000)
    n_num = np.trapezoid(lognlogs_dnds(s, agn), s)
    i_num = np.trapezoid(s * lognlogs_dnds(s, agn), s)
    assert lognlogs_number(agn) == pytest.approx(n_num, rel=1e-3)
    assert lognlogs_intensity(agn) == pytest.approx(i_num, rel=1e-3)
    flux = sample_fluxes(np.random.default_rng(1), 100_000, agn)
    assert flux.min() >= agn.s_min and flux.max() <= agn.s_max
    frac = np.mean(flux > 1e-14)
    s_hi = s[s > 1e-14]
    expect = np.trapezoid(lognlogs_dnds(s_hi, agn), s_hi) / n_num
    assert frac == pytest.approx(expect, abs=5 * np.sqrt(expect / 1e5))


def test_nfw_inverse_cdf() -> None:
    c = np.full(5, 5.0)
    u = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(nfw_mu(nfw_radius(u, c)) / nfw_mu(c), u, atol=1e-10)


# ------------------------------------------------------------------ ICM components (mocks.icm)
from scipy import stats  # noqa: E402

from mocks import icm as icm_mod  # noqa: E402


def _components(n: int, seed: int, *, cool_core, merger, beta=None, rc=None):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(seed)
    r500 = np.linspace(0.8, 1.2, n)
    return icm_mod.build_components(
        rng, MockConfig().icm, r500, np.full(n, 1e44), np.full(n, 5.0), cool_core, merger,
        np.where(cool_core, 0.4, 0.0), np.full(n, 1e43), np.full(n, 3.0), 0.6 * r500,
        sub_offset=(np.full(n, 0.5), np.zeros(n)), rc_r500=rc, beta=beta,
    ), r500  # fmt: skip


def test_centroid_offsets_are_isotropic_rayleigh_with_the_configured_scale() -> None:
    """X-ray centroid offsets: Rayleigh in radius (scale sigma), uniform in angle."""
    rng = np.random.default_rng(5)
    sigma = np.full(40_000, 0.03)
    sigma[:5] = 0.0
    dx, dy = icm_mod._rayleigh(rng, sigma)
    assert dx.shape == dy.shape == sigma.shape
    assert np.all(dx[:5] == 0) and np.all(dy[:5] == 0)
    r = np.hypot(dx, dy)[5:]
    assert stats.kstest(r, stats.rayleigh(scale=0.03).cdf).pvalue > 1e-3
    phi = np.arctan2(dy, dx)[5:]
    assert stats.kstest(phi, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3
    # each cluster its own scale
    dx2, dy2 = icm_mod._rayleigh(np.random.default_rng(6), np.array([0.01, 1.0] * 5000))
    r2 = np.hypot(dx2, dy2)
    assert np.median(r2[1::2]) / np.median(r2[0::2]) == pytest.approx(100, rel=0.1)


def test_non_cool_core_clusters_have_the_disturbed_centroid_offsets() -> None:
    """Relaxed (cool-core) clusters: offsets 0.01 R500; the others 0.05 R500 (config)."""
    n = 6000
    cool = np.arange(n) % 2 == 0
    comps, r500 = _components(n, 11, cool_core=cool, merger=np.zeros(n, bool))
    ic = MockConfig().icm
    amb = comps.kind == icm_mod.AMBIENT
    r = np.hypot(comps.x0[amb], comps.y0[amb]) / r500
    mean = np.sqrt(np.pi / 2)  # Rayleigh mean / scale
    assert r[cool].mean() == pytest.approx(mean * ic.offset_relaxed_r500, rel=0.05)
    assert r[~cool].mean() == pytest.approx(mean * ic.offset_disturbed_r500, rel=0.05)


def test_ambient_beta_is_drawn_from_the_config_when_the_halo_gives_none() -> None:
    n = 20_000
    comps, _ = _components(n, 3, cool_core=np.zeros(n, bool), merger=np.zeros(n, bool))
    ic = MockConfig().icm
    beta = comps.beta[comps.kind == icm_mod.AMBIENT]
    assert beta.shape == (n,) and beta.min() >= 0.56 and beta.max() <= 1.1
    assert np.median(beta) == pytest.approx(ic.beta_mean, abs=0.003)
    assert np.std(beta) == pytest.approx(ic.beta_sd, rel=0.05)
    # values the halo sets are clipped to the same range
    given, _ = _components(3, 3, cool_core=np.zeros(3, bool), merger=np.zeros(3, bool),
                           beta=np.array([0.5, 0.7, 1.3]), rc=np.array([0.01, 0.2, 0.9]))  # fmt: skip
    assert given.beta[:3].tolist() == [0.56, 0.7, 1.1]


def test_shape_draws_are_clipped_to_their_physical_ranges() -> None:
    """beta in [0.56, 1.1] (beta > 1/2 for a finite flux; Mohr+99 range), r_c / R500c in
    [0.03, 0.6], the cool-core r_c / R500c in [0.01, 0.1]: with spreads wide enough to cross
    every bound, every draw is inside and each bound itself is reached (a clip, not a cut)."""
    n = 4000
    r500 = np.full(n, 1.0)
    zero = np.zeros(n)

    def comps(**icm: float) -> icm_mod.Components:
        return icm_mod.build_components(
            np.random.default_rng(9), MockConfig(icm=icm).icm, r500, np.full(n, 1e44),
            np.full(n, 5.0), np.ones(n, bool), np.ones(n, bool), np.full(n, 0.3),
            np.full(n, 1e43), np.full(n, 3.0), r500 * 0.6, sub_offset=(zero, zero),
        )  # fmt: skip

    for beta_mean in (0.6, 1.15):  # the lower, then the upper bound crossed by ~40%
        c = comps(beta_mean=beta_mean, beta_sd=0.19, rc_scatter_ln=1.9)
        for kind in (icm_mod.AMBIENT, icm_mod.SUBCLUSTER):
            b = c.beta[c.kind == kind]
            assert b.min() >= 0.56 and b.max() <= 1.1
            bound = 0.56 if beta_mean < 0.8 else 1.1
            assert 0.2 < np.mean(b == bound) < 0.7, (kind, bound)
        rc = c.rc[c.kind == icm_mod.AMBIENT]  # r500 = 1: in units of R500c
        assert rc.min() == 0.03 and rc.max() == 0.6
        assert 0.05 < np.mean(rc == 0.03) < 0.3 and 0.05 < np.mean(rc == 0.6) < 0.3
    for median, bound in ((0.006, 0.01), (0.16, 0.1)):
        c = comps(cc_rc_median_r500=median)
        cc_rc = c.rc[c.kind == icm_mod.COOL_CORE]
        assert cc_rc.min() >= 0.01 and cc_rc.max() <= 0.1
        assert 0.8 < np.mean(cc_rc == bound) < 1.0  # 0.3 ln spread: most cross the bound
    # the halo's own r_c (mock v2) is clipped to the same range as the draws
    given, r = _components(3, 3, cool_core=np.zeros(3, bool), merger=np.zeros(3, bool),
                           beta=np.full(3, 0.7), rc=np.array([0.01, 0.2, 0.9]))  # fmt: skip
    amb = given.kind == icm_mod.AMBIENT
    np.testing.assert_allclose(given.rc[amb] / r, [0.03, 0.2, 0.6], rtol=1e-12)


def test_components_line_up_and_sit_where_their_offsets_put_them() -> None:
    """Every field has one entry per component; a subcluster sits at the ambient centroid plus
    its orbital offset on both axes; any positive merger-core luminosity makes a component."""
    n = 3
    r500 = np.array([0.9, 1.0, 1.1])
    fields = ("cluster", "kind", "x0", "y0", "rc", "beta", "q", "theta", "lum500", "r_norm", "kt")
    for core in (None, np.array([0.0, 1e-3, 2e43])):
        c = icm_mod.build_components(
            np.random.default_rng(4), MockConfig().icm, r500, np.full(n, 1e44), np.full(n, 5.0),
            np.zeros(n, bool), np.ones(n, bool), np.zeros(n), np.full(n, 1e43), np.full(n, 3.0),
            0.6 * r500, sub_offset=(np.array([0.3, -0.2, 0.1]), np.array([-0.4, 0.25, 0.0])),
            merger_core_lum=core,
        )  # fmt: skip
        assert {getattr(c, f).shape for f in fields} == {(len(c),)}
        amb, sub = c.kind == icm_mod.AMBIENT, c.kind == icm_mod.SUBCLUSTER
        np.testing.assert_allclose(c.x0[sub] - c.x0[amb], [0.3, -0.2, 0.1], atol=1e-15)
        np.testing.assert_allclose(c.y0[sub] - c.y0[amb], [-0.4, 0.25, 0.0], atol=1e-15)
        mc = c.kind == icm_mod.MERGER_CORE
        assert c.cluster[mc].tolist() == ([] if core is None else [1, 2])


def test_the_component_stream_of_a_seed_is_pinned() -> None:
    """The same seed gives the same components across versions of the code.

    A mock catalogue is named by its seed and config hash; if a change of the code moved the
    random stream (an extra draw, a draw of another size), the same name would hold other
    clusters. Every field of every component is pinned: a relaxed cool core (0), a disturbed
    cluster (1), a second cool core (2) and a merger with a subcluster and a merger core (3).
    The shape draws are made whether or not the halo sets beta and r_c, so a second call with
    them set sees the same stream. Values from the code of 2026-11-29 (numpy's PCG64 is the same
    on every platform); change them only with a deliberate, documented change of the mock.
    """
    expected = {
        "cluster": [0, 0, 1, 2, 2, 3, 3, 3],
        "kind": [0, 1, 0, 0, 1, 0, 2, 3],
        "x0": [0.0035540150363, 0.0035540150363, 0.0506625605289, 0.00492401417209,
               0.00492401417209, 0.0220196304403, 0.52201963044, 0.0220196304403],
        "y0": [0.0128771917162, 0.0128771917162, -0.0164951692829, -0.0290173948983,
               -0.0290173948983, -0.0477244440947, -0.0477244440947, -0.0477244440947],
        "rc": [0.118610665781, 0.0319899988124, 0.220331515751, 0.205536028966,
               0.0633257367748, 0.109171808828, 0.0972, 0.045],
        "beta": [0.700086064687, 0.7, 0.727580948489, 0.602026882216, 0.7, 0.681102766736,
                 0.734678221583, 0.681102766736],
        "q": [0.75481522823, 0.868801029138, 0.884013164289, 0.785466147776, 0.886265280701,
              0.840554678284, 0.729707913957, 0.840554678284],
        "theta": [1.692389169, 1.692389169, 1.37985935509, 1.02132253522, 1.02132253522,
                  2.96382833618, 0.888747872626, 2.96382833618],
        "lum500": [1e44, 5e43, 1e44, 1e44, 3e43, 1e44, 1e43, 2e43],
        "r_norm": [0.8, 0.8, 1.0, 1.2, 1.2, 0.9, 0.54, 0.9],
        "kt": [5.0, 3.0, 5.0, 5.0, 3.0, 5.0, 3.0, 5.0],
    }  # fmt: skip
    n = 4
    r500 = np.array([0.8, 1.0, 1.2, 0.9])

    def build(**halo: np.ndarray) -> icm_mod.Components:
        return icm_mod.build_components(
            np.random.default_rng(2023), MockConfig().icm, r500, np.full(n, 1e44),
            np.full(n, 5.0), np.array([True, False, True, False]),
            np.array([False, False, False, True]), np.array([0.5, 0.0, 0.3, 0.0]),
            np.full(n, 1e43), np.full(n, 3.0), r500 * 0.6,
            sub_offset=(np.full(n, 0.5), np.zeros(n)),
            merger_core_lum=np.array([0.0, 0.0, 0.0, 2e43]), **halo,
        )  # fmt: skip

    comps = build()
    for field, values in expected.items():
        got = getattr(comps, field)
        if field in ("cluster", "kind"):
            assert got.tolist() == values, field
        else:
            np.testing.assert_allclose(got, values, rtol=1e-9, err_msg=field)
    halo = build(rc_r500=np.full(n, 0.2), beta=np.full(n, 0.7))
    amb = halo.kind == icm_mod.AMBIENT
    for field in ("x0", "y0", "q", "theta", "lum500", "kt"):
        np.testing.assert_array_equal(getattr(halo, field), getattr(comps, field), err_msg=field)
    np.testing.assert_allclose(halo.rc[amb], 0.2 * r500, rtol=1e-12)
    assert np.all(halo.beta[amb] == 0.7)
    # the components' physics, as the docstring of mocks.icm states it
    ic = MockConfig().icm
    cc = comps.kind == icm_mod.COOL_CORE
    np.testing.assert_allclose(comps.q[cc] ** 2, comps.q[amb][[0, 2]], rtol=1e-12)  # rounder
    np.testing.assert_allclose(comps.kt[cc], ic.cc_temperature_ratio * 5.0)  # cooler
    sub = comps.kind == icm_mod.SUBCLUSTER
    assert comps.x0[sub][0] - comps.x0[amb][3] == pytest.approx(0.5)  # at its orbit's offset
    np.testing.assert_allclose(comps.rc[sub], ic.rc_median_r500 * 0.6 * r500[3])
    mc = comps.kind == icm_mod.MERGER_CORE
    np.testing.assert_allclose(comps.rc[mc], ic.merger_core_rc_r500 * r500[3])


def test_subcluster_positions_follow_the_orbit_and_the_projection() -> None:
    """r = r_apo sin(pi t) R500c after the core passage, projected by sin(i), at angle PA."""
    ic = MockConfig().icm
    apo = ic.sub_apocentre_r500
    phase = np.array([0.5, 0.25, np.nan, 0.5, 1.5, -0.2, 0.5, 0.5])
    orient = np.array(
        [[0.0, 0.0], [0.6, np.pi / 2], [0.0, 0.0], [np.nan, np.nan], [0.0, 0.0], [0.0, 0.0],
         [1.0 + 1e-12, 0.0], [-0.6, np.pi]]
    )  # fmt: skip
    r500 = np.array([2.0, 0.5, 1.0, 0.8, 1.0, 1.0, 1.0, 1.5])
    dx, dy = icm_mod.subcluster_offset(phase, orient, r500, ic)
    expected_x = [apo * 2.0, 0.0, 0.0, apo * 0.8, 0.0, 0.0, 0.0, -apo * 1.5 * 0.8]
    expected_y = [0.0, apo * np.sin(np.pi / 4) * 0.5 * 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(dx, expected_x, atol=1e-12)
    np.testing.assert_allclose(dy, expected_y, atol=1e-12)
    assert dx[2] == 0.0 and dy[2] == 0.0  # no merger (NaN phase): exactly on the main halo
    # integer inputs read as numbers
    ix, iy = icm_mod.subcluster_offset(np.array([1]), np.array([[0, 0]]), np.array([1]), ic)
    assert abs(ix[0]) < 1e-12 and iy[0] == 0.0


def test_virial_overdensity_is_bryan_and_norman() -> None:
    """Delta_vir = 18 pi^2 + 82 x - 39 x^2, x = Omega_m(z) - 1 (Bryan & Norman 1998)."""
    from astropy.cosmology import FlatLambdaCDM

    from mocks.assembly import _delta_vir

    assert _delta_vir(FlatLambdaCDM(H0=70, Om0=1.0), 0.0) == pytest.approx(18 * np.pi**2)
    x = 0.3 - 1.0
    assert _delta_vir(FlatLambdaCDM(H0=70, Om0=0.3), 0.0) == pytest.approx(
        18 * np.pi**2 + 82 * x - 39 * x**2, rel=1e-12
    )
    assert _delta_vir(FlatLambdaCDM(H0=70, Om0=0.3), 0.0) == pytest.approx(101.1, abs=0.1)


def test_m200c_from_m500c_and_the_concentration_is_the_nfw_profile() -> None:
    """Mean density 500 rho_c inside r500 and 200 rho_c inside r200 of one NFW profile.

    Independent of the code's root finder: for each c200c, solve
    200 (mu(x) / mu(c)) (c / x)^3 = 500 for x = r500 / r_s with brentq, then
    M500 / M200 = mu(x) / mu(c).
    """
    from scipy.optimize import brentq

    from mocks.assembly import m200c_given_c

    c = np.array([2.0, 4.0, 7.0, 12.0])
    m500 = np.array([1e14, 3e14, 5e14, 2e15])
    m200 = m200c_given_c(m500, c)
    for ci, m5, m2 in zip(c, m500, m200, strict=True):
        x = brentq(lambda x, c_=ci: 200 * nfw_mu(x) / nfw_mu(c_) * (c_ / x) ** 3 - 500, 1e-3, ci)
        assert m5 / m2 == pytest.approx(nfw_mu(x) / nfw_mu(ci), rel=1e-6)
    # Hu & Kravtsov (2003): M200c / M500c ~ 1.4 at c200c ~ 4-5
    assert 1.3 < m200[1] / m500[1] < 1.5
    assert np.all(np.diff(m200 / m500) < 0)  # more concentrated: less mass beyond r500
    np.testing.assert_allclose(
        m200c_given_c([1, 3], [4, 4]), m200c_given_c(np.array([1.0, 3.0]), np.array([4.0, 4.0]))
    )


def test_a_halos_concentration_is_diemer19_at_its_m200c_times_its_assembly_deviate() -> None:
    """c200c = c_DJ19(M200c, z) 10^(sigma_c delta), with M200c the NFW mass of (M500c, c200c)."""
    from colossus.halo import concentration

    from mocks.assembly import m200c_given_c, mass_and_concentration
    from mocks.halos import use_colossus

    cfg = MockConfig()
    m500 = np.array([3e13, 1e14, 1e14, 1e14, 8e14])
    delta = np.array([0.0, -1.5, 0.0, 1.5, 0.7])
    m200, c = mass_and_concentration(m500, 0.3, cfg, delta)
    np.testing.assert_allclose(m200, m200c_given_c(m500, c), rtol=1e-6)  # converged fixed point
    use_colossus(cfg.cosmology)
    mean = concentration.concentration(m200, "200c", 0.3, model=cfg.concentration_model)
    sigma = cfg.assembly.concentration_scatter_dex
    np.testing.assert_allclose(c / mean, 10 ** (sigma * delta), rtol=2e-3)  # table interpolation
    # early formers (delta > 0) are concentrated: less of their mass lies beyond r500
    assert c[3] > c[2] > c[1] and m200[3] / m500[3] < m200[2] / m500[2] < m200[1] / m500[1]
