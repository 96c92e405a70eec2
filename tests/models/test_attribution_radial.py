"""Radial geometry, profiles, proxy weight, chain rule and core radius (pure functions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.attribution.errors import AttributionError
from models.attribution.radial import (
    binned_median,
    core_radius,
    pixel_radius,
    proxy_weight,
    r500c_pixels,
    radial_bin_index,
    radial_edges,
    radial_profile,
    saliency_log_counts,
)
from models.preprocessing import Preprocessing


def test_r500c_pixels_converts_proper_to_comoving() -> None:
    # 0.5 h^-1 Mpc proper at z = 0.25 is 0.625 comoving; pixels of 4.6 / 128 h^-1 Mpc.
    assert r500c_pixels(0.5, 0.25) == pytest.approx(0.625 / (4.6 / 128))
    np.testing.assert_allclose(
        r500c_pixels(np.array([1.0, 1.0]), np.array([0.0, 1.0]), n_pixels=64),
        [64 / 4.6, 2 * 64 / 4.6],
    )


def test_pixel_radius_is_centred_and_symmetric() -> None:
    r = pixel_radius((4, 4))
    # pixel centres sit at +-0.5 and +-1.5 from the centre
    assert r[1, 1] == pytest.approx(math.sqrt(0.5)) and r[0, 0] == pytest.approx(math.sqrt(4.5))
    np.testing.assert_array_equal(r, r.T)
    np.testing.assert_array_equal(r, np.rot90(r))
    np.testing.assert_array_equal(r, r[::-1, ::-1])


def test_step_profile_is_recovered_exactly() -> None:
    """A map that is 10 inside R500c, 1 in [1, 2) R500c and 1/4 beyond: every bin exact.

    (Binary-exact values, so bin sums and means carry no rounding.)
    """
    rp = 10.3  # no pixel radius falls on a multiple of R500c
    x = pixel_radius((64, 64)) / rp
    truth = np.where(x < 1, 10.0, np.where(x < 2, 1.0, 0.25))
    for stat in ("mean", "median"):
        prof, counts = radial_profile(truth, rp, n_bins=30, r_max=3.0, statistic=stat)
        centres = 0.5 * (radial_edges(30, 3.0)[1:] + radial_edges(30, 3.0)[:-1])
        expected = np.where(centres < 1, 10.0, np.where(centres < 2, 1.0, 0.25))
        ok = counts > 0
        np.testing.assert_array_equal(prof[ok], expected[ok])
        assert np.isnan(prof[~ok]).all()
    # the element counts are those of the annuli (all pixels inside 3 R500c)
    assert counts.sum() == np.count_nonzero(x < 3.0)


def test_profile_matches_brute_force_on_channels() -> None:
    rng = np.random.default_rng(3)
    maps = rng.random((3, 40, 40))
    rp = 7.7
    prof, counts = radial_profile(maps, rp, n_bins=100, r_max=3.0)
    med, _ = radial_profile(maps, rp, n_bins=100, r_max=3.0, statistic="median")
    x = pixel_radius((40, 40)) / rp
    edges = radial_edges(100, 3.0)
    for k in range(100):
        sel = (x >= edges[k]) & (x < edges[k + 1])
        vals = maps[:, sel]  # every channel's pixels in the annulus
        assert counts[k] == vals.size
        if vals.size:
            assert prof[k] == pytest.approx(vals.mean(), rel=1e-12)
            assert med[k] == pytest.approx(np.median(vals), rel=1e-12)


def test_profile_of_a_linear_ramp_in_radius() -> None:
    """v = 2 + 3 r/R500c: the bin mean is 2 + 3 <r/R500c>_bin exactly."""
    rp = 12.0
    x = pixel_radius((80, 80)) / rp
    prof, counts = radial_profile(2.0 + 3.0 * x, rp, n_bins=20, r_max=3.0)
    mean_x, _ = radial_profile(x, rp, n_bins=20, r_max=3.0)
    ok = counts > 0
    np.testing.assert_allclose(prof[ok], 2.0 + 3.0 * mean_x[ok], rtol=1e-12)


def test_bin_index_and_errors() -> None:
    b = radial_bin_index((16, 16), 2.0, n_bins=10, r_max=3.0)
    x = pixel_radius((16, 16)) / 2.0
    assert (b[x >= 3.0] == -1).all() and (b[x < 3.0] >= 0).all()
    with pytest.raises(AttributionError, match="r500c_pix"):
        radial_bin_index((8, 8), 0.0)
    with pytest.raises(AttributionError, match="statistic"):
        radial_profile(np.ones((8, 8)), 2.0, statistic="mode")


def test_binned_median_handles_inf_and_even_counts() -> None:
    b = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    v = np.array([4.0, 1.0, 3.0, 2.0, np.inf, 5.0, np.inf, 7.0])
    out = binned_median(b, v, 4)
    assert out[0] == 2.5 and out[1] == np.inf and out[2] == 7.0 and np.isnan(out[3])


def test_proxy_weight_is_dlnM_dln_counts_of_nphot_estimator() -> None:
    """ln M = (ln N_phot - pi) / alpha: perturbing one pixel's ln(N + 1) gives the weight."""
    rng = np.random.default_rng(0)
    counts = rng.poisson(5.0, (16, 16)).astype(float)
    alpha = 1.3
    w = proxy_weight(counts, alpha)
    i, j, eps = 7, 9, 1e-6
    bumped = counts.copy()
    bumped[i, j] = (counts[i, j] + 1.0) * math.exp(eps) - 1.0
    dlnm = (math.log(bumped.sum()) - math.log(counts.sum())) / alpha
    assert w[i, j] == pytest.approx(dlnm / eps, rel=1e-4)
    assert w.sum() == pytest.approx((counts.sum() + counts.size) / (counts.sum() * alpha))
    with pytest.raises(AttributionError, match="alpha_nphot"):
        proxy_weight(counts, -1.0)


def test_chain_rule_to_log_counts_matches_finite_difference() -> None:
    """|df/dx| * dx/dln(N+1) equals d ln M / d ln(N + 1) through the real input transform."""
    pre = Preprocessing("single", 0.8, 3.4, 4000.0, 0.3, 0.45, 13.5, 15.0)
    z = np.array([0.3])
    s = float(pre.count_scale(z)[0])
    weights = torch.linspace(-1.0, 1.0, 64, dtype=torch.float64).reshape(1, 1, 8, 8)

    def log10_m(counts: np.ndarray) -> float:  # a toy network: linear in the input x
        x = pre.transform_images(counts[None, None], z).double()
        return float(14.0 + 0.01 * (weights * x).sum())

    counts = np.arange(64, dtype=np.float64).reshape(8, 8) % 7
    grad = 0.01 * np.abs(weights.numpy()[0, 0])  # |d log10 M / dx|
    conv = saliency_log_counts(grad, counts, s, pre.image_std)
    for i, j in [(0, 0), (3, 5), (7, 7)]:
        eps = 1e-3  # central difference: O(eps^2); float32 inputs need eps >> 1e-7
        up, down = counts.copy(), counts.copy()
        up[i, j] = (counts[i, j] + 1) * math.exp(eps) - 1
        down[i, j] = (counts[i, j] + 1) * math.exp(-eps) - 1
        dlnm = math.log(10) * (log10_m(up) - log10_m(down)) / (2 * eps)
        # float32 inside transform_images: a few 1e-4 relative
        assert conv[i, j] == pytest.approx(abs(dlnm), rel=2e-3)


def test_core_radius_interpolates_the_crossing() -> None:
    r = np.linspace(0.015, 2.985, 100)
    q = 10 ** (2.0 - 5.0 * r)  # log-linear in r: crosses 10 at r = 0.2 exactly
    assert core_radius(r, q, 10.0) == pytest.approx(0.2, abs=1e-12)
    # empty bins are skipped, an infinite ratio counts as above the threshold
    q2 = q.copy()
    q2[:3] = [np.inf, np.nan, np.inf]
    assert core_radius(r, q2, 10.0) == pytest.approx(0.2, abs=1e-12)
    # never above, or never below: no core
    assert math.isnan(core_radius(r, np.full(100, 3.0)))
    assert math.isnan(core_radius(r, np.full(100, 30.0)))
