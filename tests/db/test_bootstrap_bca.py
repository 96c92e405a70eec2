"""db.bootstrap's interval of the scatter per bin is the BCa interval of models.intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from db import bootstrap
from models.intervals import bca, jackknife_groups

LN10 = math.log(10.0)


@pytest.mark.parametrize("n", [5, 100, 1234])
def test_the_jackknife_of_the_scatter_from_sums_is_the_scatter_without_each_group(n: int) -> None:
    r = np.random.default_rng(n).normal(3.0, 0.1, n)  # residuals far from 0: exact sums needed
    direct = [np.std(r[keep], ddof=1) * LN10 for keep in jackknife_groups(n)]
    assert bootstrap._jackknife_sigma_lnm(r) == pytest.approx(direct, rel=1e-10)


def test_scatter_interval_is_bca_and_contains_its_value_even_for_a_tiny_bin() -> None:
    r = np.random.default_rng(4).normal(0, 0.08, 300)
    est, lo, hi = bootstrap.bootstrap_sigma_lnm(
        r, n_resamples=500, ci_level=0.68, rng=np.random.default_rng(9)
    )
    # The same resamples by hand: the BCa interval with the jackknife acceleration.
    idx = np.random.default_rng(9).integers(0, r.size, size=(500, r.size))
    reps = np.std(r[idx], axis=1, ddof=1) * LN10
    jack = [np.std(r[keep], ddof=1) * LN10 for keep in jackknife_groups(r.size)]
    iv = bca(np.std(r, ddof=1) * LN10, reps, np.array(jack), 0.68)
    assert (est, lo, hi) == pytest.approx((iv.value, iv.low, iv.high), rel=1e-12)
    assert est == pytest.approx(np.std(r, ddof=1) * LN10, rel=1e-12)  # unbiased: the plain one
    # Three residuals (resamples repeat values, most scatters fall below the plain one): the
    # value still lies inside its interval.
    for seed in range(20):
        tiny = np.random.default_rng(seed).normal(0, 0.08, 3)
        est, lo, hi = bootstrap.bootstrap_sigma_lnm(
            tiny, n_resamples=200, ci_level=0.68, rng=np.random.default_rng(seed)
        )
        assert lo <= est <= hi
