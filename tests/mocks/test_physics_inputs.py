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
