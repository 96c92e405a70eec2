"""Count maps: decomposition, counts against expectations, orientation, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from mocks import MockCatalogue, MockConfig, generate
from mocks.config import HALF_WIDTH_MPC_H, NPIX, PIXEL_MPC_H
from mocks.icm import AMBIENT, Components, enclosed_fraction
from mocks.xray import Optics, bin_photons, extended_photons, point_photons, uniform_background


def _one_component(
    x0: float = 0.0,
    y0: float = 0.0,
    rc: float = 0.1,
    beta: float = 0.7,
    q: float = 1.0,
    theta: float = 0.0,
) -> Components:
    f = lambda v: np.array([v], dtype=float)  # noqa: E731
    return Components(
        cluster=np.array([0]),
        kind=np.array([AMBIENT]),
        x0=f(x0),
        y0=f(y0),
        rc=f(rc),
        beta=f(beta),
        q=f(q),
        theta=f(theta),
        lum500=f(1.0),
        r_norm=f(1.0),
        kt=f(3.0),
    )


def test_shapes_dtypes_and_exact_decomposition(small_cat: MockCatalogue) -> None:
    n = len(small_cat)
    for arr in (small_cat.counts_total, small_cat.counts_agn, small_cat.counts_icm):
        assert arr.shape == (n, 3, NPIX, NPIX) and arr.dtype == np.int32
    bkg = small_cat.counts_background
    assert bkg.min() >= 0  # total = agn + icm + background, background never negative
    np.testing.assert_array_equal(
        small_cat.counts_agn + small_cat.counts_icm + bkg, small_cat.counts_total
    )
    t = small_cat.truth
    np.testing.assert_array_equal(t["N_phot"], small_cat.counts_total.sum(axis=(1, 2, 3)))
    np.testing.assert_array_equal(t["N_phot_icm"], small_cat.counts_icm.sum(axis=(1, 2, 3)))


def test_n_phot_500c_uses_r500c_not_twice_it(small_cat: MockCatalogue) -> None:
    t = small_cat.truth
    c = (np.arange(NPIX) + 0.5) * PIXEL_MPC_H - HALF_WIDTH_MPC_H
    r = np.hypot(c[None, :], c[:, None])
    for i in range(0, len(t), 37):
        r500_com = t["r500c"][i].value * (1 + t["redshift"][i])
        inside = small_cat.counts_total[i].sum(0)[r < r500_com].sum()
        assert t["N_phot_500c"][i] == inside
        assert inside < small_cat.counts_total[i].sum(0)[r < 2 * r500_com].sum()


def test_background_matches_its_expectation(small_cat: MockCatalogue) -> None:
    bkg = small_cat.counts_background.astype(float).mean(axis=(2, 3))  # per pixel, per band
    expect = np.asarray(small_cat.truth["bkg_per_pixel"])
    err = np.sqrt(expect / NPIX**2)
    z = (bkg - expect) / err
    assert np.abs(z).max() < 5
    assert abs(z.mean()) < 4 / np.sqrt(z.size)


def test_icm_counts_match_flux_expectation(small_cat: MockCatalogue) -> None:
    """ICM counts inside R500c (relaxed, single-component clusters) = expected from the flux."""
    t = small_cat.truth
    c = (np.arange(NPIX) + 0.5) * PIXEL_MPC_H - HALF_WIDTH_MPC_H
    r = np.hypot(c[None, :], c[:, None])
    obs, exp = 0.0, 0.0
    for i in np.flatnonzero(~np.asarray(t["merger"]) & ~np.asarray(t["cool_core"])):
        r500_com = t["r500c"][i].value * (1 + t["redshift"][i])
        obs += small_cat.counts_icm[i].sum(0)[r < r500_com].sum()
        exp += float(t["cts_icm_500c_expected"][i].value)
    # a few per cent may leave/enter the aperture through the PSF and the pixelisation
    assert obs == pytest.approx(exp, rel=0.05, abs=4 * np.sqrt(exp))


def test_sampled_profile_counts_are_poisson_with_the_right_mean() -> None:
    """Photons of a component inside the map: mean = expectation, fraction in R = analytic."""
    rng = np.random.default_rng(5)
    comp = _one_component(rc=0.1, beta=0.7)
    optics = Optics(d_m=1000.0, pix_arcsec=7.4, psf_rc=1e-6, psf_beta=1.5, n_band=3)
    r_max = np.array([2.0])  # inside the map: every photon is kept
    lam = np.array([[400.0, 200.0, 50.0]])
    out = np.zeros((1, 3, NPIX, NPIX), np.int32)
    totals, inner = [], []
    c = (np.arange(NPIX) + 0.5) * PIXEL_MPC_H - HALF_WIDTH_MPC_H
    rr = np.hypot(c[None, :], c[:, None])
    for _ in range(200):
        counts = rng.poisson(lam)
        bin_photons([extended_photons(rng, comp, counts, optics, r_max)], out)
        assert out.sum() == counts.sum()
        totals.append(out.sum())
        inner.append(out[0].sum(0)[rr < 0.3].sum())
    assert np.mean(totals) == pytest.approx(lam.sum(), abs=4 * np.sqrt(lam.sum() / 200))
    assert np.var(totals) == pytest.approx(lam.sum(), rel=0.35)  # Poisson variance
    frac = enclosed_fraction(0.3, 0.1, 0.7) / enclosed_fraction(2.0, 0.1, 0.7)
    assert np.sum(inner) / np.sum(totals) == pytest.approx(frac, abs=0.02)


def test_image_orientation_x_is_columns() -> None:
    rng = np.random.default_rng(1)
    optics = Optics(d_m=1000.0, pix_arcsec=7.4, psf_rc=1e-6, psf_beta=1.5, n_band=3)
    out = np.zeros((1, 3, NPIX, NPIX), np.int32)
    comp = _one_component(x0=1.0, y0=-0.5, rc=0.02)
    bin_photons(
        [extended_photons(rng, comp, np.array([[500, 0, 0]]), optics, np.array([3.0]))], out
    )
    rows, cols = np.nonzero(out[0, 0])
    w = out[0, 0][rows, cols]
    assert np.average(cols, weights=w) == pytest.approx(
        (1.0 + HALF_WIDTH_MPC_H) / PIXEL_MPC_H, abs=1
    )
    assert np.average(rows, weights=w) == pytest.approx(
        (-0.5 + HALF_WIDTH_MPC_H) / PIXEL_MPC_H, abs=1
    )
    # an elongated component (q = 0.3 along x) spreads more along the columns
    out[:] = 0
    comp = _one_component(rc=0.2, q=0.3, theta=0.0)
    bin_photons(
        [extended_photons(rng, comp, np.array([[5000, 0, 0]]), optics, np.array([2.0]))], out
    )
    rows, cols = np.nonzero(out[0, 0])
    w = out[0, 0][rows, cols]
    sx = np.sqrt(np.average((cols - 63.5) ** 2, weights=w))
    sy = np.sqrt(np.average((rows - 63.5) ** 2, weights=w))
    assert sx > 2 * sy


def test_point_sources_follow_the_psf() -> None:
    rng = np.random.default_rng(2)
    optics = Optics.build(d_m=1000.0, hew_arcsec=26.0, psf_beta=1.5, n_band=3)
    out = np.zeros((1, 3, NPIX, NPIX), np.int32)
    counts = np.array([[20000, 0, 0]])
    bin_photons(
        [point_photons(rng, np.array([0]), np.array([0.0]), np.array([0.0]), counts, optics)], out
    )
    img = out[0, 0]
    c = (np.arange(NPIX) + 0.5) * PIXEL_MPC_H - HALF_WIDTH_MPC_H
    r = np.hypot(c[None, :], c[:, None])
    hew = 26.0 / 206264.806 * 1000.0  # comoving h^-1 Mpc at D_M = 1000
    frac = img[r < hew / 2].sum() / counts.sum()
    assert 0.4 < frac < 0.6  # half the energy within HEW/2 (pixel-limited)


def test_uniform_background_both_regimes() -> None:
    rng = np.random.default_rng(3)
    out = np.zeros((2, 3, NPIX, NPIX), np.int32)
    lam = np.array([[2.0, 0.5, 1.5], [0.01, 0.005, 0.02]])  # dense and sparse paths
    uniform_background(rng, lam, out)
    mean = out.mean(axis=(2, 3))
    np.testing.assert_allclose(mean, lam, rtol=0, atol=5 * np.sqrt(lam / NPIX**2).max())
    var = out[0].reshape(3, -1).var(axis=1)
    np.testing.assert_allclose(var, lam[0], rtol=0.05)


def test_same_seed_same_maps_different_seed_different() -> None:
    cfg = MockConfig(n_clusters=12, seed=3, snapshot_redshifts=(0.2,))
    a, b = generate(cfg), generate(cfg)
    np.testing.assert_array_equal(a.counts_total, b.counts_total)
    np.testing.assert_array_equal(a.galaxies, b.galaxies)
    c = generate(cfg.model_copy(update={"seed": 4}))
    assert not np.array_equal(a.counts_total, c.counts_total)


def test_progress_callback_counts_clusters() -> None:
    seen: list[int] = []
    generate(
        MockConfig(n_clusters=10, seed=1, snapshot_redshifts=(0.2, 0.3), batch_size=4),
        progress=seen.append,
    )
    assert seen == sorted(seen) and seen[-1] == 10


def test_snapshots_draw_independent_survey_conditions(small_cat: MockCatalogue) -> None:
    # Every (snapshot, batch) has its own random stream: the clusters of one snapshot do not
    # repeat the exposures, hydrogen columns or merger states of another's.
    t = small_cat.truth
    snap = np.asarray(t["snapshot"])
    first = [np.flatnonzero(snap == s)[:32] for s in (0, 1)]  # the first batch of each
    assert all(idx.size == 32 for idx in first)
    exposure = np.asarray(t["exposure"].value)
    nh = np.asarray(t["nH"].value)
    merger = np.asarray(t["merger"], dtype=bool)
    # continuous log-normal draws: no value appears in both snapshots
    assert np.intersect1d(exposure[snap == 0], exposure[snap == 1]).size == 0
    assert np.intersect1d(nh[snap == 0], nh[snap == 1]).size == 0
    a, b = first
    for x in (np.log(exposure), np.log(nh)):
        assert abs(np.corrcoef(x[a], x[b])[0, 1]) < 0.6  # independent: |r| ~ 1/sqrt(32)
    assert merger.any() and not np.array_equal(merger[a], merger[b])
