"""The metrics of a set of mass predictions (models.metrics): one definition everywhere."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from models.baselines import dl_estimates
from models.metrics import mass_metrics, residual_summary


def _predictions(n: int = 400, seed: int = 1, sigma_dex: float = 0.1, bias_dex: float = 0.03):
    rng = np.random.default_rng(seed)
    true = rng.uniform(13.5, 15.0, n)
    pred = true + bias_dex + sigma_dex * rng.standard_normal(n)
    return pred, true


def test_residual_summary_is_ln_scatter_and_mean_residual_of_finite_pairs() -> None:
    pred, true = _predictions()
    pred[3], true[7] = np.nan, np.inf  # two pairs without a residual
    ok = np.isfinite(pred) & np.isfinite(true)
    r = pred[ok] - true[ok]
    out = residual_summary(pred, true)
    assert out == {
        "n": 398,
        "sigma_lnM": pytest.approx(np.std(r) * math.log(10.0), rel=1e-12),
        "bias_dex": pytest.approx(np.mean(r), rel=1e-12),
    }


def test_residual_summary_without_any_finite_pair_is_nan_not_an_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and silently: no "mean of empty slice" in the logs
        out = residual_summary(np.array([np.nan, 1.0]), np.array([14.0, np.nan]))
    assert out["n"] == 0
    assert math.isnan(out["sigma_lnM"]) and math.isnan(out["bias_dex"])


def test_missing_values_given_as_none_are_left_out_like_nan() -> None:
    """Predictions read from SQL carry NULL as None: such a pair has no residual."""
    with_none = residual_summary([14.1, None, 14.35], [14.0, 14.2, 14.3])
    assert with_none == residual_summary([14.1, 14.35], [14.0, 14.3])
    assert with_none["n"] == 2
    assert residual_summary([14.1, 14.2], [None, 14.0])["n"] == 1


def test_mass_metrics_interval_brackets_the_scatter_and_bias_at_the_level() -> None:
    pred, true = _predictions()
    pred[0] = np.nan
    out = mass_metrics(pred, true, n_boot=200, level=0.9, seed=5)
    summary = residual_summary(pred, true)
    assert out["n"] == summary["n"] == 399
    assert out["ci_level"] == 0.9 and out["n_boot"] == 200
    assert out["bootstrap"] == {"n_boot": 200, "seed": 5, "level": 0.9}
    assert out["sigma_lnM"] == pytest.approx(summary["sigma_lnM"], rel=1e-12)
    assert out["bias_dex"] == pytest.approx(summary["bias_dex"], rel=1e-12)
    assert out["sigma_lnM_lo"] < out["sigma_lnM"] < out["sigma_lnM_hi"]
    assert out["bias_dex_lo"] < out["bias_dex"] < out["bias_dex_hi"]
    # a wider central interval at a higher level, from the same resamples
    wider = mass_metrics(pred, true, n_boot=200, level=0.99, seed=5)
    assert wider["sigma_lnM_hi"] - wider["sigma_lnM_lo"] > out["sigma_lnM_hi"] - out["sigma_lnM_lo"]
    assert "calibration" not in out


def test_mass_metrics_defaults_are_a_1000_resample_68_percent_interval() -> None:
    pred, true = _predictions(n=60)
    out = mass_metrics(pred, true)
    assert (out["n_boot"], out["ci_level"]) == (1000, 0.68)
    assert out["bootstrap"] == {"n_boot": 1000, "seed": 0, "level": 0.68}
    assert out == mass_metrics(pred, true, n_boot=1000, level=0.68, seed=0)
    assert out != mass_metrics(pred, true, seed=1)


def test_mass_metrics_resamples_within_snapshots() -> None:
    """The bootstrap keeps each snapshot's size: the strata change the interval, not the value."""
    pred, true = _predictions(n=200)
    snap = np.repeat([0, 1], 100)
    pred[100:] += 0.5  # a snapshot offset: a resample's bias depends on the snapshot mix
    one = mass_metrics(pred, true, n_boot=300, seed=2)
    strat = mass_metrics(pred, true, snap, n_boot=300, seed=2)
    assert strat["bias_dex"] == one["bias_dex"]
    # stratified resamples hold 100 + 100 clusters: their bias spread is the within-snapshot one
    assert strat["bias_dex_hi"] - strat["bias_dex_lo"] < 0.5 * (
        one["bias_dex_hi"] - one["bias_dex_lo"]
    )


def test_mass_metrics_needs_two_clusters_for_an_interval() -> None:
    out = mass_metrics(np.array([14.0, np.nan]), np.array([14.1, 14.2]))
    assert out == {"n": 1, "ci_level": 0.68, "n_boot": 1000}


def test_mass_metrics_calibration_uses_the_uncertainties_of_the_kept_clusters() -> None:
    pred, true = _predictions(n=300, sigma_dex=0.1, bias_dex=0.0)
    sigma = np.full(pred.size, 0.1)
    pred[0], sigma[1] = np.nan, np.nan
    out = mass_metrics(pred, true, sigma=sigma, n_boot=10)
    cal = out["calibration"]
    assert cal["median_sigma_dex"] == pytest.approx(0.1)
    assert cal["coverage_68"] == pytest.approx(0.68, abs=0.07)
    assert cal["coverage_95"] == pytest.approx(0.95, abs=0.04)
    # no finite uncertainty: no calibration block
    assert "calibration" not in mass_metrics(
        pred, true, sigma=np.full(pred.size, np.nan), n_boot=10
    )


def test_mass_metrics_interval_is_the_stratified_bootstrap_of_dl_estimates() -> None:
    """Same resamples (n_boot, level, seed, strata) as models.baselines.dl_estimates."""
    pred, true = _predictions(n=120)
    snap = np.repeat([3, 7, 9], 40)
    out = mass_metrics(pred, true, snap, n_boot=150, level=0.8, seed=11)
    scatter, bias = dl_estimates(pred, true, snap, n_boot=150, level=0.8, seed=11)
    assert (out["sigma_lnM_lo"], out["sigma_lnM_hi"]) == (scatter.low, scatter.high)
    assert (out["bias_dex_lo"], out["bias_dex_hi"]) == (bias.low, bias.high)


def test_two_clusters_are_enough_for_an_interval() -> None:
    out = mass_metrics(np.array([14.0, 14.2, np.nan]), np.array([14.1, 14.0, 14.5]), n_boot=20)
    assert out["n"] == 2 and "sigma_lnM" in out and "bias_dex_hi" in out


def test_mass_metrics_leave_out_none_like_nan_in_predictions_truth_and_sigma() -> None:
    pred, true = _predictions(n=50)
    sigma = np.full(50, 0.1)
    ref = mass_metrics(pred[1:-1], true[1:-1], sigma=sigma[1:-1], n_boot=30)
    p, t, s = list(pred), list(true), list(sigma)
    p[0], t[-1] = None, None
    assert mass_metrics(p, t, sigma=s, n_boot=30) == ref
    s[5] = None  # a NULL uncertainty: that cluster has no calibration entry, the rest do
    cal = mass_metrics(p, t, sigma=s, n_boot=30)["calibration"]
    assert cal["median_sigma_dex"] == pytest.approx(0.1)
