"""Mock v2: halo assembly, the same halos across snapshots, gas tied to the halo, presets.

Each test states a physical relation of mocks/assembly.py or mocks/generate.py and checks it on
a few hundred clusters against the number it was built from (cited in mocks/config.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from mocks import MockConfig, generate
from mocks.assembly import fakhouri_rate_per_dz
from mocks.catalogue import MockCatalogue
from mocks.config import PAPER_REDSHIFTS
from mocks.halos import HaloMassFunction, _cm_table
from mocks.icm import Components, emission_shape, enclosed_fraction
from mocks.population import sample_population
from models.folds import octant_folds

N = 700


@pytest.fixture(scope="module")
def pop():  # noqa: ANN201
    return sample_population(MockConfig(n_clusters=4000, seed=21))


@pytest.fixture(scope="module")
def cat() -> MockCatalogue:
    return generate(MockConfig(n_clusters=N, seed=22, snapshot_redshifts=(0.1, 0.25, 0.4)))


def _col(t, name: str) -> np.ndarray:  # noqa: ANN001
    return np.asarray(getattr(t[name], "value", t[name]), dtype=float)


def _resid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y - np.polyval(np.polyfit(x, y, 1), x)


def test_rows_per_snapshot_follow_the_tinker08_abundance(pop) -> None:  # noqa: ANN001
    cfg = MockConfig()
    counts = np.bincount(pop.snapshot, minlength=len(cfg.snapshot_redshifts))
    nd = np.array([HaloMassFunction.build(z).number_density() for z in cfg.snapshot_redshifts])
    assert counts.sum() == 4000
    np.testing.assert_allclose(counts / counts[0], nd / nd[0], atol=0.02)


def test_halos_repeat_across_snapshots_and_stay_in_their_fold(pop) -> None:  # noqa: ANN001
    ids, per_halo = np.unique(pop.halo_id, return_counts=True)
    assert per_halo.mean() > 3  # the same halos at several snapshots, as in Magneticum
    folds = octant_folds(pop.pos, 352.0)
    same = [np.unique(folds[pop.halo_id == h]).size == 1 for h in ids]
    assert np.mean(same) > 0.97  # peculiar drift moves only halos next to a fold boundary
    for h in ids[:200]:  # masses grow with time along each history (higher z, lower mass)
        k = np.flatnonzero(pop.halo_id == h)
        order = np.argsort(pop.snapshot[k])
        assert np.all(np.diff(pop.m500c[k][order]) <= 0)


def test_concentration_scatter_about_diemer19(pop) -> None:  # noqa: ANN001
    s = pop.snapshot == 0
    lgm, c = _cm_table("Planck18", MockConfig().snapshot_redshifts[0], "diemer19")
    mean = np.interp(np.log10(pop.m200c[s]), lgm, c)
    dev = np.log10(pop.c200c[s] / mean)
    assert abs(np.median(dev)) < 0.02
    assert np.std(dev) == pytest.approx(0.14, abs=0.015)  # Bhattacharya+13, 0.33 in ln c


def test_concentrated_halos_formed_earlier_and_accrete_slower(pop) -> None:  # noqa: ANN001
    s = pop.snapshot == 0
    x = np.log(pop.m200c[s])
    c_res = _resid(x, np.log(pop.c200c[s]))
    zf_res = _resid(x, np.log1p(pop.z_form[s]))
    acc_res = _resid(x, np.log(pop.accretion_rate[s]))
    assert np.corrcoef(c_res, zf_res)[0, 1] > 0.8  # Wechsler+02: c_vir = 4.1 a_obs / a_c
    assert np.corrcoef(c_res, acc_res)[0, 1] < -0.9


def test_mergers_follow_the_accretion_rate(pop) -> None:  # noqa: ANN001
    x = np.log(pop.m500c)
    acc = _resid(x, np.log(pop.accretion_rate))
    fast, slow = acc > np.quantile(acc, 2 / 3), acc < np.quantile(acc, 1 / 3)
    assert pop.merger[fast].mean() > 1.5 * pop.merger[slow].mean()
    assert 0.05 < pop.merger.mean() < 0.35


def test_fakhouri_rate_scalings() -> None:
    cfg = MockConfig()
    r = fakhouri_rate_per_dz(np.array([1e12, 1e14]), 0.0, cfg)
    assert r[1] / r[0] == pytest.approx(100**0.133, rel=1e-9)  # FMBK10: (M / 1e12)^0.133
    r_z = fakhouri_rate_per_dz(np.array([1e12]), 1.0, cfg)
    assert r_z[0] / r[0] == pytest.approx(2**0.0993, rel=1e-9)  # (1 + z)^0.0993


def test_cool_cores_are_relaxed_early_formers_at_the_configured_fraction(
    cat: MockCatalogue,
) -> None:
    t = cat.truth
    cc, merger = np.asarray(t["cool_core"]), np.asarray(t["merger"])
    assert not np.any(cc & merger)
    assert cc.mean() == pytest.approx(0.35, abs=3 * np.sqrt(0.35 * 0.65 / len(t)))
    x = np.log(_col(t, "m200c"))
    c_res = _resid(x, np.log(_col(t, "c200c")))
    assert c_res[cc].mean() > c_res[~cc & ~merger].mean()


def test_cool_core_state_persists_unless_a_merger_intervenes(pop) -> None:  # noqa: ANN001
    from mocks.generate import cool_core_threshold

    q = cool_core_threshold(pop, 0.35)
    cc = ~pop.merger & (pop.relax > q)
    for h in np.unique(pop.halo_id)[:300]:
        k = pop.halo_id == h
        calm = ~pop.merger[k]
        assert np.unique(cc[k][calm]).size <= 1


def test_gas_fraction_rises_with_mass_and_falls_with_concentration(cat: MockCatalogue) -> None:
    t = cat.truth
    snap = np.asarray(t["snapshot"])
    x = np.log(_col(t, "m500c"))
    fgas = np.log(_col(t, "f_gas"))
    # Lovisari+15 M_gas-M slope 1.2 -> f_gas ~ M^0.2, with 0.10 ln scatter
    slope = np.polyfit(x, fgas, 1)[0]
    assert slope == pytest.approx(0.2, abs=0.06)
    r = _resid(x, fgas)
    assert np.std(r) == pytest.approx(0.10, abs=0.02)
    c_res = np.concatenate(
        [_resid(x[snap == s], np.log(_col(t, "c200c"))[snap == s]) for s in np.unique(snap)]
    )
    f_res = np.concatenate([_resid(x[snap == s], fgas[snap == s]) for s in np.unique(snap)])
    assert np.corrcoef(c_res, f_res)[0, 1] < -0.1  # AGN feedback acting longer (sign)
    # M_gas is the gas of the photons: M_gas = f_gas M500c exactly
    np.testing.assert_allclose(_col(t, "M_gas"), _col(t, "f_gas") * _col(t, "m500c"), rtol=1e-12)


def test_luminosity_comes_from_the_gas(cat: MockCatalogue) -> None:
    t = cat.truth
    ok = ~np.asarray(t["cool_core"]) & ~np.asarray(t["merger"])
    x = np.log(_col(t, "m500c"))[ok]
    l_res = _resid(x, np.log(_col(t, "L_X_ce"))[ok])
    f_res = _resid(x, np.log(_col(t, "f_gas"))[ok])
    # L ~ M_gas^2 at fixed shape: the gas-fraction deviation moves L with a slope near 2
    assert np.polyfit(f_res, l_res, 1)[0] == pytest.approx(2.0, abs=0.5)
    # surface-brightness concentration (core / total) and luminosity at fixed mass co-vary
    csb = _resid(x, np.log(_col(t, "L_X_core") / _col(t, "L_X"))[ok])
    assert np.corrcoef(csb, _resid(x, np.log(_col(t, "L_X"))[ok]))[0, 1] > 0.2


def test_temperature_falls_with_non_thermal_pressure(cat: MockCatalogue) -> None:
    t = cat.truth
    x = np.log(_col(t, "m500c"))
    # hydrostatic T, before the transient merger heating (mocks.icm.merger_boosts)
    t_res = _resid(x, np.log(_col(t, "T") / _col(t, "merger_boost_T")))
    fnt = _col(t, "f_nt")
    assert np.corrcoef(fnt, t_res)[0, 1] < -0.2  # hydrostatic kT ~ (1 - f_nt)
    assert np.median(fnt) == pytest.approx(0.15, abs=0.03)  # Nelson+14 at R500c


def test_emission_shape_matches_a_numerical_projection() -> None:
    for xc, beta in ((0.1, 0.6), (0.2, 0.67), (0.3, 0.9)):

        def rho(r: float, xc: float = xc, beta: float = beta) -> float:
            return (1 + (r / xc) ** 2) ** (-1.5 * beta)

        def surface(big_r: float, rho=rho) -> float:  # noqa: ANN001
            """Emission measure along the line of sight at projected radius big_r."""
            return 2 * integrate.quad(lambda ell: rho(np.hypot(big_r, ell)) ** 2, 0, np.inf)[0]

        m_gas = integrate.quad(lambda r, rho=rho: 4 * np.pi * r**2 * rho(r), 0, 1)[0]
        em = integrate.quad(lambda big_r, s=surface: 2 * np.pi * big_r * s(big_r), 0, 1)[0]
        assert emission_shape(np.array([xc]), np.array([beta]))[0] == pytest.approx(
            em / m_gas**2, rel=1e-4
        )


def test_enclosed_fraction_is_the_projected_beta_model_integral() -> None:
    """f(<R) = int_0^R S 2 pi r dr / int_0^inf, S = (1 + r^2 / r_c^2)^(1/2 - 3 beta), from a
    numerical integral; scalars, ints and broadcast arrays alike."""
    for radius, rc, beta in ((0.3, 0.1, 0.7), (1.0, 0.18, 0.6), (0.05, 0.2, 1.05), (2.0, 0.5, 0.9)):

        def sb(r: float, rc: float = rc, beta: float = beta) -> float:
            return 2 * np.pi * r * (1 + (r / rc) ** 2) ** (0.5 - 3 * beta)

        inner = integrate.quad(sb, 0, radius, epsabs=0, epsrel=1e-12)[0]
        total = inner + integrate.quad(sb, radius, np.inf, epsabs=0, epsrel=1e-12)[0]
        assert enclosed_fraction(radius, rc, beta) == pytest.approx(inner / total, rel=1e-8)
    assert enclosed_fraction(2, 1, 1) == enclosed_fraction(2.0, 1.0, 1.0) == 1 - 5.0**-1.5
    grid = enclosed_fraction(np.array([[0.1], [1.0]]), np.array([0.1, 0.2]), 0.7)
    assert grid.shape == (2, 2) and np.all(np.diff(grid, axis=0) > 0)  # grows with radius
    assert np.all(np.diff(grid, axis=1) < 0)  # a wider core holds less inside a radius


def test_component_luminosity_within_scales_by_the_enclosed_fractions() -> None:
    """L(<r) = lum500 f(<r) / f(<r_norm): lum500 at r_norm itself, the total at infinity."""
    one = np.ones(2)
    comps = Components(
        cluster=np.arange(2), kind=np.zeros(2, np.int64), x0=0 * one, y0=0 * one,
        rc=np.array([0.1, 0.3]), beta=np.array([0.67, 0.8]), q=one, theta=0 * one,
        lum500=np.array([1e44, 3e43]), r_norm=np.array([1.0, 0.8]), kt=5 * one,
    )  # fmt: skip
    np.testing.assert_allclose(comps.luminosity_within(comps.r_norm), comps.lum500, rtol=1e-14)
    total = comps.lum500 / enclosed_fraction(comps.r_norm, comps.rc, comps.beta)
    np.testing.assert_allclose(comps.luminosity_within(np.full(2, 1e9)), total, rtol=1e-9)
    half = comps.luminosity_within(np.array([0.2, 0.2]))
    expected = (
        comps.lum500
        * enclosed_fraction(0.2, comps.rc, comps.beta)
        / enclosed_fraction(comps.r_norm, comps.rc, comps.beta)
    )
    np.testing.assert_allclose(half, expected, rtol=1e-14)
    assert np.all(half < comps.lum500)


@pytest.mark.parametrize("preset", ["paper", "erass"])
def test_presets(preset: str) -> None:
    cfg = MockConfig.from_preset(preset, n_clusters=40, seed=5)
    cat = generate(cfg)
    bkg = cat.counts_total - cat.counts_icm - cat.counts_agn
    if preset == "paper":
        assert cfg.snapshot_redshifts == PAPER_REDSHIFTS
        assert not bkg.any()  # ICM + AGN photons only, as Ho+23's photon maps
        assert np.all(_col(cat.truth, "bkg_per_pixel") == 0)
    else:
        assert bkg.sum() > 0 and np.all(_col(cat.truth, "bkg_per_pixel") > 0)
    again = generate(MockConfig.from_preset(preset, n_clusters=40, seed=5))
    np.testing.assert_array_equal(again.counts_total, cat.counts_total)


# ------------------------------------------------- relations of mocks.assembly, at their precision
from astropy.cosmology import Planck18  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from mocks import assembly  # noqa: E402
from mocks.halos import nfw_mu  # noqa: E402


def test_c_vir_over_c200c_solves_the_nfw_overdensity_ratio() -> None:
    """r_vir / r_200c of an NFW halo: the mean density inside r_vir is Delta_vir (Bryan & Norman
    1998, relative to critical) and inside r_200c 200, so mu(c x) / mu(c) / x^3 = Delta_vir / 200
    at x = c_vir / c200c; checked against a root solve, at z where Delta_vir < 200 (x > 1)."""
    for z in (0.0, 0.3, 1.0):
        om = float(Planck18.Om(z)) - 1
        dvir = 18 * np.pi**2 + 82 * om - 39 * om**2
        assert dvir == pytest.approx(assembly._delta_vir(Planck18, z), rel=1e-14)
        c = np.array([2.0, 4.0, 7.0, 12.0])
        got = assembly.c_vir_over_c200c(c, Planck18, z)
        for ci, xi in zip(c, got, strict=True):
            x = brentq(
                lambda x, ci=ci, d=dvir: nfw_mu(ci * x) / nfw_mu(ci) / x**3 - d / 200, 0.5, 3
            )
            assert xi == pytest.approx(x, rel=1e-7)
        assert np.all(got > 1) and np.all(np.diff(got) < 0)  # larger c: profile steeper
    assert assembly._delta_vir(Planck18, 0.0) == pytest.approx(102.4, abs=0.5)  # Planck18


def test_fakhouri_rate_is_the_fmbk10_integral_to_its_grid_precision() -> None:
    """dN/dz = A (M / 1e12 Msun)^alpha (1 + z)^eta int_{xi_min}^1 xi^beta exp((xi/xi_t)^gamma)
    dxi (FMBK10 eq. 1 integrated over the ratios); the 200-point log grid is good to 4e-5."""
    cfg = MockConfig.from_preset("paper")
    a = cfg.assembly

    def kernel(x: float) -> float:
        return x**a.fmbk_beta * np.exp((x / a.fmbk_xi_tilde) ** a.fmbk_gamma)

    exact = integrate.quad(kernel, a.merger_min_ratio, 1.0, epsrel=1e-13, limit=200)[0]
    m, z = np.array([1e13, 3e14, 2e15]), 0.37
    expected = a.fmbk_a * (m / 1e12) ** a.fmbk_alpha * (1 + z) ** a.fmbk_eta * exact
    np.testing.assert_allclose(fakhouri_rate_per_dz(m, z, cfg), expected, rtol=1e-4)


def test_merger_ratio_quantiles_invert_the_kernels_cdf() -> None:
    """u -> xi with int_{xi_min}^xi p = u, to 1e-5 (a 512-point grid); xi_min at u = 0 and
    exactly 1 at u = 1; monotonic."""
    cfg = MockConfig.from_preset("paper")
    a = cfg.assembly

    def kernel(x: float) -> float:
        return x**a.fmbk_beta * np.exp((x / a.fmbk_xi_tilde) ** a.fmbk_gamma)

    total = integrate.quad(kernel, a.merger_min_ratio, 1.0, epsrel=1e-13)[0]
    u = np.array([0.02, 0.1, 0.3, 0.5, 0.8, 0.95, 0.999])
    exact = [
        brentq(
            lambda x, uu=uu: (
                integrate.quad(kernel, a.merger_min_ratio, x, epsrel=1e-12)[0] / total - uu
            ),
            a.merger_min_ratio,
            1.0,
            xtol=1e-14,
        )
        for uu in u
    ]
    np.testing.assert_allclose(assembly.merger_ratio_quantile(u, cfg), exact, rtol=1e-5)
    ends = assembly.merger_ratio_quantile(np.array([0.0, 1.0]), cfg)
    assert ends[0] == pytest.approx(a.merger_min_ratio, rel=1e-12) and ends[1] == 1.0
    fine = assembly.merger_ratio_quantile(np.linspace(0, 1, 2001), cfg)
    assert np.all(np.diff(fine) > 0)


def test_mass_and_concentration_is_the_converged_fixed_point() -> None:
    """(M200c, c200c) from M500c: six fixed-point steps from M200c = 1.4 M500c reach the
    self-consistent halo (M200c of an NFW halo of that M500c and c(M200c)) to < 4e-10."""
    cfg = MockConfig.from_preset("paper")
    m500 = np.geomspace(3e13, 6e15, 7)
    delta = np.linspace(-2, 2, 7)
    m200, c = assembly.mass_and_concentration(m500, 0.2, cfg, delta)
    ref = 1.4 * m500
    for _ in range(60):  # iterate to machine precision
        ref = assembly.m200c_given_c(m500, assembly._concentration(ref, 0.2, cfg, delta))
    np.testing.assert_allclose(m200, ref, rtol=4e-10)
    np.testing.assert_allclose(c, assembly._concentration(ref, 0.2, cfg, delta), rtol=1e-9)
    np.testing.assert_allclose(assembly.m200c_given_c(m500, c), m200, rtol=4e-10)
