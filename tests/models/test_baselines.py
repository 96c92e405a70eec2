"""Scalar-proxy scatter, combinations, network scatter and bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.baselines import (
    bootstrap,
    bootstrap_replicates,
    combined_estimate,
    combined_scatter,
    dl_bias,
    dl_estimates,
    dl_scatter,
    fit_proxy_snapshot,
    proxy_estimate,
    proxy_scatter,
)
from models.errors import ProxyError
from models.intervals import bca


def _sample(n: int = 6000, seed: int = 0):
    rng = np.random.default_rng(seed)
    logm = rng.uniform(13.5, 15.0, n)
    snap = rng.integers(0, 3, n)
    mu = logm * math.log(10) - math.log(2e14)
    return rng, logm, snap, mu


def test_single_proxy_recovers_scatter_over_slope() -> None:
    rng, logm, snap, mu = _sample()
    alpha, sig = 1.6, 0.4  # L_X-like: sigma_lnM = 0.4 / 1.6 = 0.25
    s = np.exp(3.0 + 0.1 * snap + alpha * mu + sig * rng.standard_normal(mu.size))
    fit = fit_proxy_snapshot(logm[snap == 0], s[snap == 0], 0)
    assert fit.slope == pytest.approx(alpha, rel=0.03)
    assert proxy_scatter(logm, s, snap) == pytest.approx(sig / alpha, rel=0.03)


def test_combination_of_independent_proxies() -> None:
    rng, logm, snap, mu = _sample()
    a1, s1, a2, s2 = 1.0, 0.3, 0.6, 0.12
    p1 = np.exp(a1 * mu + s1 * rng.standard_normal(mu.size))
    p2 = np.exp(a2 * mu + s2 * rng.standard_normal(mu.size))
    expected = (a1**2 / s1**2 + a2**2 / s2**2) ** -0.5  # 1/sigma^2 = sum alpha_i^2 / sigma_i^2
    assert combined_scatter(logm, np.stack([p1, p2], 1), snap) == pytest.approx(expected, rel=0.03)
    # one proxy: 1/(alpha C^-1 alpha) = (std/alpha)^2; combined = sqrt of its snapshot mean,
    # while the single-proxy row averages std/alpha itself (the paper's two conventions)
    per_snap = [fit_proxy_snapshot(logm[snap == k], p1[snap == k], k).sigma_lnm for k in range(3)]
    assert combined_scatter(logm, p1[:, None], snap) == pytest.approx(
        math.sqrt(np.mean(np.square(per_snap))), rel=1e-9
    )
    assert proxy_scatter(logm, p1, snap) == pytest.approx(np.mean(per_snap), rel=1e-9)


def test_correlated_proxies_help_less() -> None:
    rng, logm, snap, mu = _sample()
    e = rng.standard_normal(mu.size)
    p1 = np.exp(mu + 0.3 * e)
    p2 = np.exp(mu + 0.3 * (0.9 * e + math.sqrt(1 - 0.81) * rng.standard_normal(mu.size)))
    both = combined_scatter(logm, np.stack([p1, p2], 1), snap)
    # rho = 0.9: sigma^2 = s^2 (1 + rho) / 2
    assert both == pytest.approx(0.3 * math.sqrt(1.9 / 2), rel=0.03)


def test_non_positive_values_dropped_and_too_few_raise() -> None:
    rng, logm, snap, mu = _sample(600)
    s = np.exp(mu + 0.2 * rng.standard_normal(mu.size))
    s[:20] = 0.0
    assert proxy_scatter(logm, s, snap) == pytest.approx(0.2, rel=0.15)
    with pytest.raises(ProxyError, match="no snapshot"):
        proxy_scatter(logm[:6], s[20:26], np.arange(6))


def test_dl_scatter_and_bias() -> None:
    rng = np.random.default_rng(1)
    true = rng.uniform(13.5, 15, 20000)
    pred = true + 0.003 + 0.07 * rng.standard_normal(true.size)
    assert dl_scatter(pred, true) == pytest.approx(0.07 * math.log(10), rel=0.02)
    assert dl_bias(pred, true) == pytest.approx(0.003, abs=0.0015)


def test_bootstrap_interval_is_seeded_and_brackets() -> None:
    rng, logm, snap, mu = _sample(900)
    s = np.exp(mu + 0.3 * rng.standard_normal(mu.size))
    a = proxy_estimate(logm, s, snap, n_boot=200, seed=4)
    b = proxy_estimate(logm, s, snap, n_boot=200, seed=4)
    assert a == b and a.low < a.value < a.high and a.n_boot == 200
    # 68% interval of a std from ~300 per snapshot: half-width ~ 0.3 / sqrt(2 * 900) ~ 0.007
    assert 0.003 < (a.high - a.low) / 2 < 0.015
    scatter, bias = dl_estimates(
        logm + 0.05 * rng.standard_normal(logm.size), logm, snap, n_boot=100
    )
    assert scatter.low < scatter.value < scatter.high and bias.low < bias.value < bias.high
    none = bootstrap(lambda i: float(len(i)), snap, n_boot=0)
    assert none.low == none.value == none.high == snap.size


def test_falling_proxy_has_the_positive_scatter_of_its_mirror() -> None:
    # A proxy that falls with mass (1/s) carries the same information as s: the same residual
    # std and a slope of opposite sign, so its mass scatter std / |alpha| is the same, positive.
    rng, logm, snap, mu = _sample(900)
    rising = np.exp(1.2 * mu + 0.3 * rng.standard_normal(mu.size))
    falling = 1.0 / rising
    fit = fit_proxy_snapshot(logm[snap == 0], falling[snap == 0], 0)
    assert fit.slope < 0 < fit.sigma_lnm
    up = proxy_scatter(logm, rising, snap)
    down = proxy_scatter(logm, falling, snap)
    assert down > 0
    assert down == pytest.approx(up, rel=1e-9)


def test_combined_estimate_is_the_combined_scatter_with_a_seeded_interval() -> None:
    rng, logm, snap, mu = _sample(300)
    p = np.stack([np.exp(mu + 0.3 * rng.standard_normal(mu.size)) for _ in range(2)], 1)
    est = combined_estimate(logm, p, snap, n_boot=50, level=0.9, seed=3, names=["a", "b"])
    assert est.value == combined_scatter(logm, p, snap)
    assert est.low < est.value < est.high
    assert (est.level, est.n_boot) == (0.9, 50)
    assert est == combined_estimate(logm, p, snap, n_boot=50, level=0.9, seed=3)
    assert est != combined_estimate(logm, p, snap, n_boot=50, level=0.9, seed=4)
    # defaults: 1000 resamples, a 68% interval
    default = combined_estimate(logm[:40], p[:40], snap[:40])
    assert (default.level, default.n_boot) == (0.68, 1000)


def test_fit_proxy_snapshot_recovers_an_exact_relation_at_the_pivot_mass() -> None:
    # s = 3 (M / 2e14)^1.5 exactly: intercept ln 3 at the pivot 2e14 h^-1 Msun, slope 1.5
    logm = np.array([13.6, 13.9, 14.2, 14.5, 14.8])
    mu = logm * math.log(10) - math.log(2e14)
    fit = fit_proxy_snapshot(logm, 3.0 * np.exp(1.5 * mu), snapshot=7)
    assert (fit.snapshot, fit.n) == (7, 5)
    assert fit.intercept == pytest.approx(math.log(3.0), abs=1e-9)
    assert fit.slope == pytest.approx(1.5, rel=1e-9)
    assert fit.residual_std == pytest.approx(0.0, abs=1e-9)
    assert fit_proxy_snapshot(logm, 3.0 * np.exp(1.5 * mu)).snapshot == 0
    with pytest.raises(ProxyError, match=r"^snapshot 7: 4 clusters, need >= 5 to fit$"):
        fit_proxy_snapshot(logm[:4], np.exp(mu[:4]), snapshot=7)


def test_float32_columns_give_the_float64_result() -> None:
    # catalogue columns often come as float32 (FITS): the fit works in float64 throughout
    rng, logm, snap, mu = _sample(600)
    s = np.exp(1.3 * mu + 0.3 * rng.standard_normal(mu.size))
    m32, s32 = logm.astype(np.float32), s.astype(np.float32)
    m64, s64 = m32.astype(np.float64), s32.astype(np.float64)
    assert proxy_scatter(m32, s32, snap) == pytest.approx(proxy_scatter(m64, s64, snap), rel=1e-12)
    both32, both64 = np.stack([s32, s32**0.5 * 2], 1), np.stack([s64, s64**0.5 * 2], 1)
    both32 = both32 * np.float32(1.0) + rng.normal(0, 1e-3, both32.shape).astype(np.float32)
    both64 = both32.astype(np.float64)
    assert combined_scatter(m32, both32, snap) == pytest.approx(
        combined_scatter(m64, both64, snap), rel=1e-12
    )


def test_a_snapshot_of_exactly_five_clusters_is_fitted() -> None:
    logm = np.array([13.6, 13.9, 14.2, 14.5, 14.8])
    mu = logm * math.log(10) - math.log(2e14)
    s = np.exp(2.0 * mu + np.array([0.1, -0.1, 0.0, 0.1, -0.1]))
    fit = fit_proxy_snapshot(logm, s, 0)
    assert proxy_scatter(logm, s, np.full(5, 3)) == pytest.approx(fit.sigma_lnm, rel=1e-12)


def test_dropped_clusters_are_logged_with_the_proxy_names(caplog: pytest.LogCaptureFixture) -> None:
    rng, logm, snap, mu = _sample(300)
    s = np.exp(mu + 0.2 * rng.standard_normal(mu.size))
    with caplog.at_level("INFO", logger="models.baselines"):
        proxy_scatter(logm, s, snap)
    assert caplog.messages == []  # nothing dropped, nothing logged
    s2 = np.exp(0.5 * mu + 0.2 * rng.standard_normal(mu.size))
    s[:3], s[3], s2[:4] = 0.0, -1.0, 0.0
    msg = "proxies {}: dropped 4 clusters with non-positive values"
    for call, names in [
        (lambda: proxy_scatter(logm, s, snap), ["proxy"]),
        (lambda: proxy_scatter(logm, s, snap, name="lx"), ["lx"]),
        (lambda: proxy_estimate(logm, s, snap, n_boot=0), ["proxy"]),
        (lambda: proxy_estimate(logm, s, snap, n_boot=0, name="lx"), ["lx"]),
        (lambda: combined_scatter(logm, np.stack([s, s2], 1), snap, names=["a", "b"]), None),
        (
            lambda: combined_estimate(logm, np.stack([s, s2], 1), snap, n_boot=0, names=["a", "b"]),
            None,
        ),
    ]:
        caplog.clear()
        with caplog.at_level("INFO", logger="models.baselines"):
            call()
        assert caplog.messages == [msg.format(names if names else ["a", "b"])]


def test_combined_scatter_names_the_proxies_of_a_singular_covariance() -> None:
    rng, logm, snap, mu = _sample(50)
    snap = np.zeros(mu.size, int)
    p = np.exp(mu + 0.3 * rng.standard_normal(mu.size))
    with pytest.raises(
        ProxyError, match=r"^snapshot 0: singular residual covariance of \['lx', 'lx'\]$"
    ):
        combined_scatter(logm, np.stack([p, p], 1), snap, names=["lx", "lx"])
    # five proxies of five clusters: the covariance is singular only up to round-off and
    # alpha^T C^-1 alpha comes out negative
    r = np.random.default_rng(0)
    lm, five = r.uniform(13.5, 15, 5), np.exp(r.standard_normal((5, 5)))
    with pytest.raises(
        ProxyError,
        match=r"^snapshot 0: residual covariance of \['a', 'b', 'c', 'd', 'e'\] is singular$",
    ):
        combined_scatter(lm, five, np.zeros(5, int), names=list("abcde"))


def test_a_weak_proxy_has_a_mass_scatter_above_one() -> None:
    # sigma_lnM = 0.8 / 0.4 = 2: a large but finite scatter, not a singular covariance
    rng, logm, snap, mu = _sample()
    p = np.exp(0.4 * mu + 0.8 * rng.standard_normal(mu.size))
    assert combined_scatter(logm, p[:, None], snap) == pytest.approx(2.0, rel=0.05)


def test_bootstrap_resamples_each_snapshot_and_takes_the_bca_interval() -> None:
    snap = np.repeat([0, 1, 5], [10, 12, 1])  # snapshot 5 has a single cluster
    values = np.random.default_rng(8).normal(size=snap.size)  # distinct resample means
    seen: list[np.ndarray] = []

    def stat(i: np.ndarray) -> float:
        seen.append(i)
        if len(seen) % 7 == 0:
            raise ProxyError("a resample without a fit")  # dropped from the interval
        return float(values[i].mean())

    est = bootstrap(stat, snap, n_boot=400, level=0.9, seed=2)
    full, resamples, jack = seen[0], seen[1:401], seen[401:]
    assert list(full) == list(range(snap.size)) and est.plain == values.mean()
    assert (est.level, est.n_boot) == (0.9, 400)
    drawn = np.concatenate(resamples)
    assert set(drawn.tolist()) == set(range(snap.size))  # every cluster, the first ones too
    for i in resamples:
        assert sorted(snap[i].tolist()) == sorted(snap.tolist())  # each snapshot keeps its size
    # Then the delete-one jackknife (23 clusters) for the acceleration.
    assert [np.setdiff1d(np.arange(snap.size), i).tolist() for i in jack] == [
        [k] for k in range(snap.size)
    ]
    stats = [values[i].mean() if b % 7 else np.nan for b, i in enumerate(resamples, 2)]
    jk = [values[i].mean() if b % 7 else np.nan for b, i in enumerate(jack, 402)]
    iv = bca(values.mean(), np.array(stats), np.array(jk), 0.9)
    assert (est.value, est.low, est.high, est.bias_corrected) == (
        iv.value,
        iv.low,
        iv.high,
        iv.bias_corrected,
    )
    assert est.low < est.value < est.high


def test_bootstrap_defaults_and_the_size_of_a_resample_count() -> None:
    snap = np.array([0, 0, 0, 1, 1, 1])
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])

    def stat(i):
        return float(values[i].sum())

    est = bootstrap(stat, snap)
    assert (est.level, est.n_boot) == (0.68, 1000)
    assert est == bootstrap(stat, snap, n_boot=1000, level=0.68, seed=0)
    one = bootstrap(stat, snap, n_boot=1, level=0.9)
    assert one.n_boot == 1 and one.low == one.high and one.level == 0.9
    none = bootstrap(stat, snap, n_boot=0, level=0.9)
    assert none == bootstrap(stat, snap, n_boot=-3, level=0.9)
    assert (none.value, none.low, none.high, none.level) == (63.0, 63.0, 63.0, 0.9)
    assert type(none.n_boot) is int and none.n_boot == 0


def test_proxy_estimate_passes_its_options_to_the_bootstrap() -> None:
    rng, logm, snap, mu = _sample(60)
    s = np.exp(mu + 0.3 * rng.standard_normal(mu.size))
    est = proxy_estimate(logm, s, snap, n_boot=30, level=0.9, seed=4)
    assert (est.level, est.n_boot) == (0.9, 30)
    assert est != proxy_estimate(logm, s, snap, n_boot=30, level=0.9, seed=5)
    default = proxy_estimate(logm[:40], s[:40], snap[:40])
    assert (default.level, default.n_boot) == (0.68, 1000)
    assert default == proxy_estimate(logm[:40], s[:40], snap[:40], n_boot=1000, seed=0)


def test_combined_estimate_default_seed_is_zero() -> None:
    rng, logm, snap, mu = _sample(40)
    p = np.stack([np.exp(mu + 0.3 * rng.standard_normal(mu.size)) for _ in range(2)], 1)
    assert combined_estimate(logm, p, snap, n_boot=100) == combined_estimate(
        logm, p, snap, n_boot=100, seed=0
    )


def test_dl_estimates_options_missing_values_and_a_single_stratum() -> None:
    rng = np.random.default_rng(5)
    true = rng.uniform(13.5, 15, 200)
    pred = true + 0.01 + 0.07 * rng.standard_normal(true.size)
    snap = rng.integers(0, 3, true.size)
    sc, bi = dl_estimates(pred, true, snap, n_boot=50, level=0.9, seed=4)
    assert [(e.level, e.n_boot) for e in (sc, bi)] == [(0.9, 50), (0.9, 50)]
    sc5, bi5 = dl_estimates(pred, true, snap, n_boot=50, level=0.9, seed=5)
    assert sc5 != sc and bi5 != bi
    # clusters with a missing prediction or truth are left out before resampling
    pred_nan = np.concatenate([pred, [np.nan, 14.0]])
    true_nan = np.concatenate([true, [14.0, np.inf]])
    snap_nan = np.concatenate([snap, [0, 0]])
    assert dl_estimates(pred_nan, true_nan, snap_nan, n_boot=50, seed=4) == dl_estimates(
        pred, true, snap, n_boot=50, seed=4
    )
    # no snapshot: one stratum
    assert dl_estimates(pred, true, n_boot=50) == dl_estimates(
        pred, true, np.zeros(true.size, int), n_boot=50
    )
    sc_d, bi_d = dl_estimates(pred[:20], true[:20])
    assert [(e.level, e.n_boot) for e in (sc_d, bi_d)] == [(0.68, 1000), (0.68, 1000)]
    assert (sc_d, bi_d) == dl_estimates(pred[:20], true[:20], n_boot=1000, seed=0)


def test_bootstrap_replicates_are_seeded_and_default_to_the_bootstraps_settings() -> None:
    snap = np.repeat([0, 1], 6)
    values = np.random.default_rng(3).normal(size=snap.size)

    def stat(i: np.ndarray) -> float:
        return float(values[i].mean())

    value, reps = bootstrap_replicates(stat, snap)
    assert value == values.mean() and reps.shape == (1000,)
    np.testing.assert_array_equal(reps, bootstrap_replicates(stat, snap, n_boot=1000, seed=0)[1])
    again = bootstrap_replicates(stat, snap, n_boot=50, seed=9)[1]
    np.testing.assert_array_equal(again, bootstrap_replicates(stat, snap, n_boot=50, seed=9)[1])
    assert not np.array_equal(again, bootstrap_replicates(stat, snap, n_boot=50, seed=8)[1])
    assert bootstrap_replicates(stat, snap, n_boot=0)[1].shape == (0,)


def test_a_bootstrap_without_resamples_reports_the_full_sample_value_as_plain() -> None:
    est = bootstrap(lambda i: float(len(i)), np.zeros(5, int), n_boot=0)
    assert (est.value, est.plain, est.bias_corrected) == (5.0, 5.0, False)
