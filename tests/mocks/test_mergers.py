"""Mergers (mass ratios, transient boosts, subcluster orbit) and morphology measured on maps.

Each test states a relation of mocks/assembly.py, mocks/icm.py or mocks/morphology.py and checks
it against the number it was built from (cited in mocks/config_halo.py) on a few hundred halos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.cosmology import Planck18
from scipy import integrate, stats
from typer.testing import CliRunner

from cli.main import app
from mocks import MockConfig, MockParameterError, generate, morphology
from mocks.assembly import merger_ratio_pdf, merger_ratio_quantile
from mocks.catalogue import MockCatalogue
from mocks.icm import (
    AMBIENT,
    MERGER_CORE,
    Components,
    enclosed_fraction,
    merger_boosts,
    subcluster_offset,
)
from mocks.population import sample_population

H = Planck18.h
#: the transient boosts as read/recalled from Ricker & Sarazin 2001 (off in the presets,
#: docs/mocks.md): the mechanism's tests switch them on explicitly
RS01 = {
    "merger_lx_boost_equal_mass": 10.0,
    "merger_lx_boost_one_third": 4.0,
    "merger_t_boost_equal_mass": 3.0,
}
_CAT = dict(n_clusters=500, seed=32, snapshot_redshifts=(0.1, 0.25, 0.4))


@pytest.fixture(scope="module")
def pop():  # noqa: ANN201
    return sample_population(MockConfig(n_clusters=4000, seed=31))


@pytest.fixture(scope="module")
def cat() -> MockCatalogue:
    return generate(MockConfig(**_CAT))


@pytest.fixture(scope="module")
def cat_rs01() -> MockCatalogue:
    """The same halos with the RS01 boosts switched on."""
    return generate(MockConfig(**_CAT, icm=RS01))


def _col(t, name: str) -> np.ndarray:  # noqa: ANN001
    return np.asarray(getattr(t[name], "value", t[name]), dtype=float)


def _resid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y - np.polyval(np.polyfit(x, y, 1), x)


# ------------------------------------------------------------------ mass ratios (FMBK10 kernel)
def test_merger_ratio_pdf_is_the_normalised_fakhouri_kernel() -> None:
    cfg = MockConfig()
    a = cfg.assembly
    total = integrate.quad(lambda x: merger_ratio_pdf(np.array([x]), cfg)[0], 0.1, 1.0)[0]
    assert total == pytest.approx(1.0, rel=1e-3)
    xi = np.array([0.2, 0.6])
    shape = xi**a.fmbk_beta * np.exp((xi / a.fmbk_xi_tilde) ** a.fmbk_gamma)
    p = merger_ratio_pdf(xi, cfg)
    assert p[0] / p[1] == pytest.approx(shape[0] / shape[1], rel=1e-9)
    assert merger_ratio_pdf(np.array([0.05]), cfg)[0] == 0.0  # minor mergers are not major


def test_merger_ratio_pdf_at_and_beyond_the_ends_of_its_range() -> None:
    """Both ends belong to the range (xi = 1 is an equal-mass merger); nothing lies outside."""
    cfg = MockConfig()
    a = cfg.assembly
    lo = a.merger_min_ratio
    just_inside = lo * (1.0 + 1e-6)  # between the first two grid points of the CDF
    xi = np.array([lo, just_inside, 1.0])
    kernel = xi**a.fmbk_beta * np.exp((xi / a.fmbk_xi_tilde) ** a.fmbk_gamma)
    p = merger_ratio_pdf(xi, cfg)
    assert np.all(p > 0)
    np.testing.assert_allclose(p / p[2], kernel / kernel[2], rtol=1e-12)
    outside = merger_ratio_pdf(np.array([0.0, lo * (1 - 1e-9), 1.0 + 1e-9, 1.5, 2.0]), cfg)
    assert np.all(outside == 0.0)
    # a list of plain numbers and a 2-D array are read the same way
    assert merger_ratio_pdf([1], cfg)[0] == p[2]
    assert merger_ratio_pdf(xi.reshape(3, 1), cfg).ravel().tolist() == p.tolist()


def test_merger_ratios_follow_the_kernel(pop) -> None:  # noqa: ANN001
    cfg = MockConfig()
    m = pop.merger
    # one entry per merger event (a halo shows the same event at several snapshots)
    events = np.unique(np.stack([pop.halo_id[m], pop.merger_ratio[m]]), axis=1)[1]
    assert events.size > 300
    assert events.min() >= 0.1 and events.max() <= 1.0
    grid = np.linspace(0.0, 1.0, 2001)
    xi_grid = merger_ratio_quantile(grid, cfg)

    def cdf(x: np.ndarray) -> np.ndarray:
        return np.interp(x, xi_grid, grid)

    assert stats.kstest(events, cdf).pvalue > 0.01
    # the kernel, not v1's uniform 0.1-0.5: most major mergers are near 1:10 to 1:4
    assert np.median(events) == pytest.approx(
        merger_ratio_quantile(np.array([0.5]), cfg)[0], abs=0.03
    )
    assert np.mean(events > 0.5) > 0.1  # v1 had none above 0.5


def test_a_merger_keeps_its_ratio_and_ages_between_snapshots(pop) -> None:  # noqa: ANN001
    cfg = MockConfig()
    t_age = Planck18.age(np.asarray(cfg.snapshot_redshifts)).value
    pairs = 0
    for h in np.unique(pop.halo_id[pop.merger])[:300]:
        k = np.flatnonzero((pop.halo_id == h) & pop.merger)
        for a, b in zip(k[:-1], k[1:], strict=True):
            if pop.merger_ratio[a] != pop.merger_ratio[b]:
                continue  # a newer merger took over
            pairs += 1
            dt = t_age[pop.snapshot[a]] - t_age[pop.snapshot[b]]
            assert pop.t_since_merger[a] - pop.t_since_merger[b] == pytest.approx(dt, abs=1e-6)
    assert pairs > 20
    assert np.all(np.isnan(pop.t_since_merger[~pop.merger]))
    assert np.all(pop.merger_ratio[~pop.merger] == 0)


# ------------------------------------------------------------------ transient boosts
def test_boosts_are_off_by_default_in_the_code_and_both_presets() -> None:
    """Unverified boost numbers are not used by default (docs/mocks.md, 'Merger boosts')."""
    root = Path(__file__).resolve().parents[2]
    cfgs = [MockConfig(), MockConfig.from_preset("paper"), MockConfig.from_preset("erass")]
    cfgs += [MockConfig.from_yaml(root / "configs" / f"mock_{n}.yaml") for n in ("paper", "erass")]
    cfgs.append(MockConfig.from_yaml(root / "configs" / "mock_default.yaml"))
    xi, t = np.array([1.0, 1 / 3, 0.1]), np.zeros(3)
    for cfg in cfgs:
        bl, bt = merger_boosts(xi, t, cfg.icm)
        np.testing.assert_array_equal(bl, 1.0)
        np.testing.assert_array_equal(bt, 1.0)


def test_default_mergers_are_not_heated_or_brightened(cat: MockCatalogue) -> None:
    """Without the boosts no merger carries transient light or heat: no compressed-core
    component, boost columns 1, and mergers sit on the M-T and L-M relations of calm non-cool
    cores (within ~3.5 standard errors of the mean offset on ~90 mergers: 5% in T, 15% in L_X;
    with the RS01 boosts they are 1.5x hotter and 1.9x brighter; cosmological simulations find
    recent mergers cool at fixed mass, Mathiesen & Evrard 2001)."""
    t = cat.truth
    m = np.asarray(t["merger"])
    assert m.sum() > 50
    np.testing.assert_array_equal(_col(t, "merger_boost_L"), 1.0)
    np.testing.assert_array_equal(_col(t, "merger_boost_T"), 1.0)
    assert not np.any(cat.icm_components.kind == MERGER_CORE)
    snap = np.asarray(t["snapshot"])
    x = np.log(_col(t, "m500c"))
    calm = ~m & ~np.asarray(t["cool_core"])
    for col, tol in (("T", 0.05), ("L_X", 0.15)):
        res = np.empty(len(t))
        for s in range(3):
            k = snap == s
            res[k] = _resid(x[k], np.log(_col(t, col))[k])
        assert abs(res[m].mean() - res[calm].mean()) < tol, col


def test_boost_peaks_are_ricker_sarazin_and_decay_with_time() -> None:
    icm = MockConfig(icm=RS01).icm
    xi = np.array([1.0, 1 / 3, 0.1, 1.0, 1.0, 0.0])
    t = np.array([0.0, 0.0, 0.0, 0.5, 2.0, np.nan])
    bl, bt = merger_boosts(xi, t, icm)
    assert bl[0] == pytest.approx(10.0) and bl[1] == pytest.approx(4.0)  # RS01: 4-10x
    assert bt[0] == pytest.approx(3.0)
    assert 1.5 < bl[2] < 3.0 and 1.2 < bt[2] < 1.7  # 1:10: a weaker boost
    assert bl[0] > bl[3] > bl[4] > 1.0 and bt[0] > bt[3] > bt[4] > 1.0
    assert bl[5] == 1.0 and bt[5] == 1.0  # no merger, no boost
    # T stays up longer than L (shock-heated gas vs the short compression spike)
    assert (bt[4] - 1) / (bt[0] - 1) > (bl[4] - 1) / (bl[0] - 1)


def test_boosts_are_exactly_the_documented_formula_with_its_clips() -> None:
    """B(xi, t) = 1 + (B1^(xi^p) - 1) exp(-t / tau), p from the 1:1 and 1:3 jumps; xi clipped
    to [1e-6, 1], t < 0 read as the core passage; no boost without a ratio > 0 and a finite
    time (docstring of merger_boosts)."""
    icm = MockConfig(icm={**RS01, "merger_lx_decay_gyr": 0.4, "merger_t_decay_gyr": 1.3}).icm
    p = np.log(np.log(4.0) / np.log(10.0)) / np.log(1.0 / 3.0)
    xi = np.array([1.0, 1 / 3, 0.1, 0.5, 0.5, 0.7])
    t = np.array([0.0, 0.25, 1.0, 3.0, 0.4, 1.3])
    bl, bt = merger_boosts(xi, t, icm)
    np.testing.assert_allclose(bl, 1 + (10.0 ** (xi**p) - 1) * np.exp(-t / 0.4), rtol=1e-12)
    np.testing.assert_allclose(bt, 1 + (3.0 ** (xi**p) - 1) * np.exp(-t / 1.3), rtol=1e-12)
    # one e-folding each: the excess falls to 1/e of the peak at t = tau
    peak_l, peak_t = merger_boosts(np.array([0.5, 0.7]), np.zeros(2), icm)
    assert (bl[4] - 1) == pytest.approx((peak_l[0] - 1) / np.e, rel=1e-12)
    assert (bt[5] - 1) == pytest.approx((peak_t[1] - 1) / np.e, rel=1e-12)
    # clips: a ratio above 1 is 1:1, below 1e-6 is 1e-6; a negative time is the passage itself
    edge_l, edge_t = merger_boosts(
        np.array([2.0, 1e-9, 1e-6, 0.5, 1e-3]), np.array([0.0, 0.0, 0.0, -0.3, 0.0]), icm
    )
    assert edge_l[0] == pytest.approx(10.0, rel=1e-12) and edge_t[0] == pytest.approx(3.0)
    assert edge_l[1] == edge_l[2] and edge_t[1] == edge_t[2]
    assert edge_l[2] == pytest.approx(10.0 ** (1e-6**p), rel=1e-12)
    assert edge_l[3] == peak_l[0] and edge_t[3] == peak_t[0]
    assert edge_l[4] == pytest.approx(10.0 ** (1e-3**p), rel=1e-12) and edge_l[4] > edge_l[2]
    # no merger: ratio 0 or negative, time NaN or infinite -> exactly 1, whatever the other
    none_l, none_t = merger_boosts(
        np.array([0.0, -0.5, 0.5, 0.5]), np.array([0.0, 0.0, np.nan, np.inf]), icm
    )
    np.testing.assert_array_equal(none_l, 1.0)
    np.testing.assert_array_equal(none_t, 1.0)
    assert 0 < p < 1
    # a mild 1:3 jump (1.5 with 3 at 1:1): still exactly the 1:3 value at xi = 1/3
    mild = MockConfig(icm={**RS01, "merger_lx_boost_equal_mass": 3.0,
                           "merger_lx_boost_one_third": 1.5}).icm  # fmt: skip
    ml, _ = merger_boosts(np.array([1.0, 1 / 3]), np.zeros(2), mild)
    np.testing.assert_allclose(ml, [3.0, 1.5], rtol=1e-12)
    # luminosity jumps off (both 1) with the temperature boost on: T boost = B_T^xi (p = 1)
    t_only = MockConfig(icm={"merger_t_boost_equal_mass": 2.0, "merger_t_decay_gyr": 1.0}).icm
    tl, tt = merger_boosts(np.array([1.0, 0.5, 0.25]), np.array([0.0, 0.0, 1.0]), t_only)
    np.testing.assert_array_equal(tl, 1.0)
    np.testing.assert_allclose(tt, [2.0, 2.0**0.5, 1 + (2.0**0.25 - 1) / np.e], rtol=1e-12)


def test_boost_parameters_are_checked_and_can_switch_the_boosts_off() -> None:
    with pytest.raises(MockParameterError, match="merger_lx_boost_one_third"):
        MockConfig(icm={**RS01, "merger_lx_boost_one_third": 12.0})
    with pytest.raises(MockParameterError, match="both be 1"):
        MockConfig(icm={**RS01, "merger_lx_boost_one_third": 1.0})
    with pytest.raises(MockParameterError, match="both be 1"):
        MockConfig(icm={"merger_lx_boost_equal_mass": 10.0})  # the 1:3 default is 1 (off)
    off = MockConfig(
        icm={
            "merger_lx_boost_equal_mass": 1.0,
            "merger_lx_boost_one_third": 1.0,
            "merger_t_boost_equal_mass": 1.0,
        }
    ).icm
    bl, bt = merger_boosts(np.array([0.5, 1.0]), np.array([0.0, 0.2]), off)
    np.testing.assert_array_equal(bl, 1.0)
    np.testing.assert_array_equal(bt, 1.0)


def test_boosts_fall_with_time_since_merger_in_the_catalogue(cat_rs01: MockCatalogue) -> None:
    t = cat_rs01.truth
    m = np.asarray(t["merger"])
    assert m.sum() > 50
    ts = _col(t, "t_since_merger")[m]
    for col in ("merger_boost_L", "merger_boost_T"):
        b = _col(t, col)
        assert np.all(b[~m] == 1.0) and np.all(b[m] > 1.0)
        assert stats.spearmanr(ts, b[m]).statistic < -0.5


def test_boosts_reach_the_truth_columns_and_the_photons(cat_rs01: MockCatalogue) -> None:
    t = cat_rs01.truth
    snap = np.asarray(t["snapshot"])
    x = np.log(_col(t, "m500c"))
    lres = np.concatenate(
        [_resid(x[snap == s], np.log(_col(t, "L_X"))[snap == s]) for s in range(3)]
    )
    tres = np.concatenate([_resid(x[snap == s], np.log(_col(t, "T"))[snap == s]) for s in range(3)])
    order = np.concatenate([np.flatnonzero(snap == s) for s in range(3)])
    m = np.asarray(t["merger"])[order]
    bl, bt = _col(t, "merger_boost_L")[order], _col(t, "merger_boost_T")[order]
    assert np.corrcoef(np.log(bl[m]), lres[m])[0, 1] > 0.4
    assert np.corrcoef(np.log(bt[m]), tres[m])[0, 1] > 0.4
    # the components that make the photons carry the boost: for rows without a cool core,
    # L_X = ambient + compressed merger core = ambient x boost, and the gas kT is the boosted T
    comps = cat_rs01.icm_components
    lum = {}
    for kind in (AMBIENT, MERGER_CORE):
        sel = comps.kind == kind
        lum[kind] = np.bincount(comps.cluster[sel], comps.lum500[sel], minlength=len(t))
    ncc = ~np.asarray(t["cool_core"])
    np.testing.assert_allclose(
        (lum[AMBIENT] + lum[MERGER_CORE])[ncc], _col(t, "L_X")[ncc], rtol=1e-12
    )
    np.testing.assert_allclose(
        lum[AMBIENT] * _col(t, "merger_boost_L"), lum[AMBIENT] + lum[MERGER_CORE], rtol=1e-12
    )
    amb = comps.kind == AMBIENT
    kt_amb = np.zeros(len(t))
    kt_amb[comps.cluster[amb]] = comps.kt[amb]
    np.testing.assert_allclose(kt_amb, _col(t, "T"), rtol=1e-12)


def test_merger_light_sits_in_the_core(cat_rs01: MockCatalogue) -> None:
    """The boost comes from the compressed cores: core-excised L_X stays tighter (Pratt+09)."""
    t = cat_rs01.truth
    m = np.asarray(t["merger"])
    x = np.log(_col(t, "m500c"))
    b = np.log(_col(t, "merger_boost_L"))
    core = _resid(x[m], np.log(_col(t, "L_X_core"))[m])
    ce = _resid(x[m], np.log(_col(t, "L_X_ce"))[m])
    assert np.polyfit(b[m], core, 1)[0] > 2 * np.polyfit(b[m], ce, 1)[0] > 0


def test_subcluster_follows_its_orbit() -> None:
    icm = MockConfig().icm
    r500 = np.ones(5)
    phase = np.array([0.0, 0.5, 1.0, 0.5, 0.25])
    orient = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, np.pi / 2]])
    dx, dy = subcluster_offset(phase, orient, r500, icm)
    sep = np.hypot(dx, dy)
    assert sep[0] == pytest.approx(0.0, abs=1e-12)  # at core passage
    assert sep[1] == pytest.approx(icm.sub_apocentre_r500)  # apocentre, in the sky plane
    assert sep[2] == pytest.approx(0.0, abs=1e-12)  # back at the second pericentre
    assert sep[3] == pytest.approx(0.0, abs=1e-12)  # orbit along the line of sight
    assert dx[4] == pytest.approx(0.0, abs=1e-12) and dy[4] > 0  # its position angle


def test_recent_mergers_have_close_subclusters(cat: MockCatalogue) -> None:
    t = cat.truth
    m = np.asarray(t["merger"])
    r500_com = _col(t, "r500c") * (1 + _col(t, "redshift"))
    sep = _col(t, "sub_separation")[m] / r500_com[m]
    assert np.all(np.isnan(_col(t, "sub_separation")[~m]))
    assert np.all(sep <= MockConfig().icm.sub_apocentre_r500 + 0.2)  # + centroid offsets
    ts = _col(t, "t_since_merger")[m]
    early = ts < np.quantile(ts, 0.15)
    assert np.median(sep[early]) < np.median(sep)


# ------------------------------------------------------------------ morphology on maps
def _single(beta: float = 0.67, rc: float = 0.05, dx: float = 0.0) -> Components:
    one = np.array
    return Components(
        cluster=one([0]), kind=one([AMBIENT]), x0=one([dx]), y0=one([0.0]), rc=one([rc]),
        beta=one([beta]), q=one([1.0]), theta=one([0.0]), lum500=one([1e44]), r_norm=one([1.0]),
        kt=one([5.0]),
    )  # fmt: skip


def test_c_sb_on_a_rendered_beta_model_matches_the_analytic_ratio() -> None:
    comps = _single()
    rng = np.random.default_rng(1)
    kpc = 0.001  # map units per physical kpc (arbitrary here)
    fmap = morphology.render_icm(rng, comps, 0, 0.45, npix=512, n_photons=3e5)
    expected = enclosed_fraction(0.04, 0.05, 0.67) / enclosed_fraction(0.4, 0.05, 0.67)
    assert morphology.c_sb(fmap, kpc, (0.0, 0.0)) == pytest.approx(expected, rel=0.03)


def test_centroid_shift_sees_a_subcluster() -> None:
    rng = np.random.default_rng(2)
    relaxed = morphology.render_icm(rng, _single(), 0, 1.05, n_photons=1e5)
    peak = morphology.x_ray_peak(relaxed, 0.01)
    assert morphology.centroid_shift(relaxed, 1.0, peak) < 0.004
    main, sub = _single(), _single(rc=0.03, dx=0.5)
    two = Components(
        **{k: np.concatenate([getattr(main, k), getattr(sub, k)]) for k in main.__dict__}
    )
    merging = morphology.render_icm(rng, two, 0, 1.05, n_photons=1e5)
    peak = morphology.x_ray_peak(merging, 0.01)
    assert morphology.centroid_shift(merging, 1.0, peak) > 0.02


def test_map_morphology_follows_the_dynamical_state(cat: MockCatalogue) -> None:
    t = cat.truth
    z = _col(t, "redshift")
    r500 = _col(t, "r500c") * (1 + z)
    rng = np.random.default_rng(3)
    rows = np.arange(0, len(t), 3)  # ~170 clusters
    csb, w = np.empty(rows.size), np.empty(rows.size)
    for j, i in enumerate(rows):
        kpc = 1e-3 * (1 + z[i]) * H
        fmap = morphology.render_icm(
            rng, cat.icm_components, int(i), max(1.05 * r500[i], 0.42 * (1 + z[i]) * H), npix=256
        )
        peak = morphology.x_ray_peak(fmap, 10 * kpc)
        csb[j] = morphology.c_sb(fmap, kpc, peak)
        w[j] = morphology.centroid_shift(fmap, r500[i], peak)
    cc = np.asarray(t["cool_core"])[rows]
    mg = np.asarray(t["merger"])[rows]
    # measured on the maps, c_SB follows the emission model it was rendered from
    assert np.corrcoef(np.log(csb), np.log(_col(t, "c_SB")[rows]))[0, 1] > 0.95
    # Santos+08 / Andrade-Santos+17: cool cores have c_SB > 0.075
    assert np.mean(csb[cc] > 0.075) > 0.9
    assert np.median(csb[cc]) > 2 * np.median(csb[~cc])
    # centroid shifts: mergers disturbed, cool cores relaxed (Böhringer+10 anti-correlation)
    assert np.median(w[mg]) > 3 * np.median(w[cc])
    assert np.mean(w[mg] > 0.01) > np.mean(w[cc] > 0.01) + 0.2


def test_render_rejects_bad_requests(cat: MockCatalogue) -> None:
    with pytest.raises(ValueError, match="row 99999"):
        morphology.render_icm(np.random.default_rng(0), cat.icm_components, 99999, 1.0)
    with pytest.raises(ValueError, match="npix"):
        morphology.render_icm(np.random.default_rng(0), cat.icm_components, 0, 1.0, npix=2)


# ------------------------------------------------------------------ presets, byte for byte
@pytest.mark.parametrize("preset", ["paper", "erass"])
def test_cli_preset_runs_are_byte_identical(tmp_path: Path, preset: str) -> None:
    dirs = []
    for name in ("a", "b"):
        out = tmp_path / name
        res = CliRunner().invoke(
            app, ["mock", "--preset", preset, "--n", "12", "--seed", "3", "--out", str(out)]
        )
        assert res.exit_code == 0, res.output
        dirs.append(out)
    files = sorted(p.relative_to(dirs[0]) for p in dirs[0].rglob("*") if p.is_file())
    assert len(files) == 12 + 3  # maps, manifest, truth.ecsv, truth.fits
    assert files == sorted(p.relative_to(dirs[1]) for p in dirs[1].rglob("*") if p.is_file())
    for rel in files:
        assert (dirs[0] / rel).read_bytes() == (dirs[1] / rel).read_bytes(), rel
