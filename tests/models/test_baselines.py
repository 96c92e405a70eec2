"""Scalar-proxy scatter, combinations, network scatter and bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.baselines import (
    bootstrap,
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
