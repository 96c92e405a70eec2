"""Calibration metrics, ensemble combination and the hidden-truth regression ("oracle")."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import ClusterArrays
from models.errors import DataError
from models.folds import make_folds
from models.oracle import (
    DEFAULT_ORACLE_FEATURES,
    FIRST_RUN_ORACLE_FEATURES,
    ORACLE_LABEL,
    oracle_features,
    oracle_label,
    oracle_predictions,
)
from models.uncertainty import calibration_report, combine_ensemble, coverage


def test_coverage_of_calibrated_gaussian() -> None:
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.03, 0.2, 40000)
    true = rng.uniform(13.5, 15, sigma.size)
    pred = true + sigma * rng.standard_normal(sigma.size)
    rep = calibration_report(pred, sigma, true)
    assert rep["coverage_68"] == pytest.approx(0.68, abs=0.01)
    assert rep["coverage_95"] == pytest.approx(0.95, abs=0.005)
    assert rep["rms_z"] == pytest.approx(1.0, abs=0.02)
    # over-confident sigmas under-cover
    assert coverage(pred, 0.5 * sigma, true, 0.68) < 0.45


def test_combine_ensemble() -> None:
    means = [np.array([1.0, 2.0]), np.array([3.0, 2.0])]
    m, s = combine_ensemble(means, [np.array([0.0, 1.0]), np.array([0.0, 1.0])])
    np.testing.assert_allclose(m, [2.0, 2.0])
    np.testing.assert_allclose(s, [1.0, 1.0])  # spread 1 + aleatoric 0; spread 0 + aleatoric 1
    m1, s1 = combine_ensemble([np.array([1.0])], [None])
    assert s1 is None and m1[0] == 1.0


def _with_scalars(arrays: ClusterArrays, **columns: np.ndarray) -> ClusterArrays:
    """The same clusters with hidden-truth columns added to (or replacing) ``scalars``."""
    return ClusterArrays(
        arrays.images,
        arrays.redshift,
        arrays.log10_m500c,
        arrays.positions,
        arrays.snapshot,
        scalars=dict(arrays.scalars, **columns),
    )


def test_oracle_recovers_deterministic_mass(arrays32: ClusterArrays) -> None:
    logm = arrays32.log10_m500c
    lx = 10 ** (44 + 1.5 * (logm - 14) + 0.1 * (logm - 14) ** 2)
    arrays = _with_scalars(arrays32, L_X_500c_true=lx)
    folds = make_folds(arrays)
    pred = oracle_predictions(arrays, folds, columns=["L_X_500c_true"])
    assert np.all(np.isfinite(pred))
    assert np.std(pred - logm) < 1e-3


def test_oracle_on_synthetic_truth(arrays32: ClusterArrays) -> None:
    x, names = oracle_features(arrays32)
    assert names == ["log10_L_X_500c_true", "log10_T", "cool_core", "redshift"]
    pred = oracle_predictions(arrays32, make_folds(arrays32))
    # L_X ~ M^1.6 (0.4 ln scatter) and T ~ M^0.58 (0.12): inverse-variance floor ~0.17 in ln M
    sig = np.std(pred - arrays32.log10_m500c) * np.log(10)
    assert 0.1 < sig < 0.3
    with pytest.raises(DataError, match="scalars present"):
        oracle_features(arrays32, ["nope"])


def test_structural_truth_is_used_when_the_mock_carries_it(arrays32: ClusterArrays) -> None:
    """The mock-v2 columns (c200c, L_X_ce, f_gas) enter the regression and its label.

    Synthetic truth in which the core-excised luminosity and the gas fraction fix the mass
    (L_ce ~ f_gas^2 M^1.3 at fixed T, Pratt+09-like slope): the first run's columns leave
    the f_gas scatter in, the extended set recovers the mass exactly.
    """
    rng = np.random.default_rng(7)
    logm = arrays32.log10_m500c
    n = logm.size
    f_gas = 0.12 * 10 ** (0.08 * rng.standard_normal(n))
    l_ce = 10 ** (44.0 + 1.3 * (logm - 14.0)) * (f_gas / 0.12) ** 2
    arrays = _with_scalars(
        arrays32, c200c=4.0 * 10 ** (0.16 * rng.standard_normal(n)), L_X_ce=l_ce, f_gas=f_gas
    )
    _, names = oracle_features(arrays)
    assert names == [
        "log10_L_X_500c_true",
        "log10_T",
        "cool_core",
        "log10_c200c",
        "log10_L_X_ce",
        "log10_f_gas",
        "redshift",
    ]
    label = oracle_label(arrays)
    assert label.startswith(ORACLE_LABEL) and all(c in label for c in DEFAULT_ORACLE_FEATURES)
    assert oracle_label(arrays32) == f"{ORACLE_LABEL} (L_X_500c_true, T, cool_core)"
    folds = make_folds(arrays)
    first = oracle_predictions(arrays, folds, columns=FIRST_RUN_ORACLE_FEATURES)
    full = oracle_predictions(arrays, folds)
    only = oracle_predictions(arrays, folds, columns=["L_X_ce", "f_gas"])
    assert np.std(only - logm) < 1e-3
    assert np.std(full - logm) < 0.5 * np.std(first - logm)
