"""AGN/ICM masks, band fractions, pooled log-histogram quantiles, one cluster's summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.attribution.errors import AttributionError
from models.attribution.pixels import (
    agn_icm_masks,
    band_fractions,
    channel_counts,
    masked_median,
    masked_positive,
)
from models.attribution.radial import pixel_radius, proxy_weight
from models.attribution.stats import LogGrid, PooledHistograms, bootstrap_estimate
from models.attribution.summary import summarise_cluster


def test_masks_on_a_hand_made_case() -> None:
    agn = np.array([[0, 5, 1], [2, 0, 0], [3, 3, 0]])
    icm = np.array([[0, 1, 1], [4, 0, 2], [1, 3, 7]])
    a, i = agn_icm_masks(agn, icm)
    np.testing.assert_array_equal(a, [[0, 1, 0], [0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(i, [[0, 0, 0], [1, 0, 1], [0, 0, 1]])
    assert not (a & i).any()  # ties (0=0, 1=1, 3=3) are in neither
    sal = np.array([[9.0, 2.0, 9.0], [4.0, 9.0, 0.0], [-6.0, 9.0, 8.0]])
    assert masked_median(sal, a) == 4.0  # |2| and |-6|
    # the ICM pixel with saliency exactly 0 is dropped, as the authors kept saliency > 0
    np.testing.assert_array_equal(np.sort(masked_positive(sal, i)), [4.0, 8.0])
    assert math.isnan(masked_median(sal, np.zeros((3, 3), bool)))


def test_masks_and_maps_share_one_orientation() -> None:
    """Rotating maps and masks together changes nothing; a transposed map is refused."""
    rng = np.random.default_rng(1)
    agn = rng.poisson(0.3, (3, 8, 6))
    icm = rng.poisson(0.5, (3, 8, 6))
    sal = rng.random((3, 8, 6))
    a, i = agn_icm_masks(agn, icm)
    ar, ir = agn_icm_masks(np.rot90(agn, axes=(1, 2)), np.rot90(icm, axes=(1, 2)))
    rot = np.rot90(sal, axes=(1, 2))
    assert masked_median(rot, ar) == masked_median(sal, a)
    assert masked_median(rot, ir) == masked_median(sal, i)
    with pytest.raises(AttributionError, match="orientation"):
        masked_median(rot, a)  # (3, 6, 8) map with a (3, 8, 6) mask: flaw 3
    with pytest.raises(AttributionError, match="shape"):
        agn_icm_masks(agn, np.rot90(icm, axes=(1, 2)))


def test_channel_counts_and_band_fractions() -> None:
    c = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    np.testing.assert_array_equal(channel_counts(c, "single"), c.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(channel_counts(c[0], "single")[0], c[0].sum(axis=0))
    np.testing.assert_array_equal(channel_counts(c, "multi"), c)
    m = np.stack([np.full((4, 4), 1.0), np.full((4, 4), -2.0), np.full((4, 4), 1.0)])
    np.testing.assert_allclose(band_fractions(m), [0.25, 0.5, 0.25])
    with pytest.raises(AttributionError):
        band_fractions(np.ones((4, 4)))


def test_log_grid_quantile_matches_numpy_within_a_bin() -> None:
    rng = np.random.default_rng(2)
    grid = LogGrid(-8.0, 0.0, 400)
    values = [10 ** rng.normal(-4, 0.7, n) for n in (500, 2000, 80)]
    hists = PooledHistograms(grid, np.stack([grid.histogram(v) for v in values]))
    pooled = np.concatenate(values)
    for q in (0.16, 0.5, 0.84):
        got = float(hists.quantile(q))
        assert abs(math.log10(got) - math.log10(np.quantile(pooled, q))) < grid.width
    # a resample with repeats equals the histogram of the repeated values
    idx = np.array([0, 0, 2])
    again = grid.histogram(np.concatenate([values[0], values[0], values[2]]))
    np.testing.assert_array_equal(hists.pooled(idx), again)
    # zeros and infinities land in the under/overflow bins
    h = grid.histogram(np.array([0.0, 1e-20, np.inf, 1e5, 1e-4]))
    assert h[0] == 2 and h[-1] == 2 and h[1:-1].sum() == 1
    assert grid.quantile(h, 0.1) == 0.0 and grid.quantile(h, 0.95) == np.inf
    assert np.isnan(grid.quantile(np.zeros(grid.size), 0.5))


def test_bootstrap_is_seeded_and_covers_the_value() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(1.0, 0.5, 400)
    strata = np.repeat([0, 1, 2, 3], 100)
    a = bootstrap_estimate(lambda i: float(np.mean(x[i])), strata, n_boot=300, level=0.68, seed=7)
    b = bootstrap_estimate(lambda i: float(np.mean(x[i])), strata, n_boot=300, level=0.68, seed=7)
    assert a == b
    assert a.low < a.value < a.high
    # the interval width is the standard error of the mean (0.5 / sqrt(400) = 0.025) within 30%
    assert (a.high - a.low) / 2 == pytest.approx(0.025, rel=0.3)


def _cluster(size: int = 48, r500: float = 9.7):
    rng = np.random.default_rng(5)
    r = pixel_radius((size, size)) / r500
    lam = 400 * (1 + (r / 0.15) ** 2) ** -1.5 + 0.3
    icm = rng.poisson(lam[None] * np.array([0.6, 0.3, 0.1])[:, None, None])
    agn = np.zeros_like(icm)
    agn[:, 30, 12] = [40, 20, 9]
    return icm + agn, agn, icm, r


def test_summary_recovers_a_known_core_radius() -> None:
    """A CNN weight built to be 100x below the proxy inside 0.3 R500c and equal outside."""
    counts, agn, icm, r = _cluster(64, 40.3)  # bins of 1.2 px: every bin near 0.3 R500c filled
    alpha, s, sigma = 1.25, 0.8, 0.4
    n = counts.sum(axis=0)[None].astype(float)  # single-band channel
    w_proxy = proxy_weight(n, alpha, counts.sum())
    w_cnn = w_proxy * np.where(r < 0.3, 0.01, 1.0)[None]
    grad = w_cnn * sigma * (s * n + 1) / (s * (n + 1))  # invert the chain rule
    cs = summarise_cluster(
        grad, counts, agn, icm, bands="single", r500c_pix=40.3, alpha_nphot=alpha,
        count_scale=s, image_std=sigma,
    )  # fmt: skip
    ok = cs.bin_counts > 0
    centres = np.linspace(0.015, 2.985, 100)
    np.testing.assert_allclose(cs.profile_ratio[ok], np.where(centres < 0.3, 100, 1.0)[ok])
    # log-linear interpolation between the bins centred at 0.285 (ratio 100) and 0.315 (1)
    assert cs.r_core == pytest.approx(0.30, abs=1e-9)
    np.testing.assert_allclose(cs.profile_saliency_ln[ok] * np.where(centres < 0.3, 100, 1)[ok],
                               cs.profile_proxy[ok], rtol=1e-9)  # fmt: skip
    # the normalised profiles integrate to one over r <= 3 R500c
    assert np.nansum(cs.bin_counts * cs.profile_fraction) == pytest.approx(1.0)
    assert np.nansum(cs.bin_counts * cs.profile_proxy_fraction) == pytest.approx(1.0)
    # one AGN pixel (band-summed 69 counts > ICM there)
    assert cs.n_agn == 1 and cs.median_agn == pytest.approx(abs(grad[0, 30, 12]))
    np.testing.assert_array_equal(cs.band_fractions, [1.0])
    assert cs.agn_hist.sum() == 1 and cs.ratio_hist.sum() == cs.bin_counts.sum()


def test_summary_of_multiband_maps_uses_per_band_masks() -> None:
    counts, agn, icm, _ = _cluster()
    sal = np.stack([np.full((48, 48), 1.0), np.full((48, 48), 2.0), np.full((48, 48), 1.0)])
    sal[:, 30, 12] = [0.5, 0.25, 0.125]
    cs = summarise_cluster(
        sal, counts, agn, icm, bands="multi", r500c_pix=9.7, alpha_nphot=1.2,
        count_scale=1.0, image_std=0.5, method="smoothgrad",
    )  # fmt: skip
    a_mask, _ = agn_icm_masks(agn, icm)
    assert cs.n_agn == int(a_mask.sum()) and cs.n_agn >= 1
    assert cs.median_agn == pytest.approx(np.median(sal[a_mask]))
    np.testing.assert_allclose(cs.band_fractions, sal.reshape(3, -1).sum(1) / sal.sum())
    assert cs.band_hist.shape[0] == 3
    # the authors' variant: band-summed masks repeated over the three bands
    summed = summarise_cluster(
        sal, counts, agn, icm, bands="multi", r500c_pix=9.7, alpha_nphot=1.2,
        count_scale=1.0, image_std=0.5, masks="summed",
    )  # fmt: skip
    a_sum, i_sum = agn_icm_masks(agn.sum(0), icm.sum(0))
    assert summed.n_agn == 3 * int(a_sum.sum()) and summed.n_icm == 3 * int(i_sum.sum())
    assert summed.median_agn == pytest.approx(np.median(sal[:, a_sum]))
    # integrated gradients is not a derivative: no ratio profile, no core radius
    ig = summarise_cluster(
        sal, counts, agn, icm, bands="multi", r500c_pix=9.7, alpha_nphot=1.2,
        count_scale=1.0, image_std=0.5, method="integrated_gradients",
    )  # fmt: skip
    assert math.isnan(ig.r_core) and ig.ratio_hist is None and np.isnan(ig.profile_ratio).all()
    with pytest.raises(AttributionError, match="orientation"):
        summarise_cluster(
            sal[:1], counts, agn, icm, bands="multi", r500c_pix=9.7, alpha_nphot=1.2,
            count_scale=1.0, image_std=0.5,
        )  # fmt: skip


def test_fast_nanmedian_matches_numpy() -> None:
    from models.attribution.summary_stats import _nanmedian

    rng = np.random.default_rng(6)
    x = rng.normal(size=(37, 12))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 4] = np.nan  # an all-NaN column
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(x, axis=0)
    np.testing.assert_array_equal(_nanmedian(x), expected)
    assert _nanmedian(x[:, 0]) == expected[0]
