"""Redshift normalisation, log transform and standardisation from training clusters only."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import ClusterArrays
from models.errors import CheckpointError
from models.preprocessing import Preprocessing, fit_preprocessing


def test_redshift_trend_removed(arrays32: ClusterArrays) -> None:
    idx = np.arange(len(arrays32))
    pre = fit_preprocessing(arrays32, idx, bands="single")
    n_phot = arrays32.images.reshape(len(idx), -1).sum(axis=1)
    # The synthetic counts fall with z at fixed mass: the fit has a negative slope ...
    assert pre.z_slope < 0
    rescaled = n_phot * pre.count_scale(arrays32.redshift)
    # ... and after rescaling log10 N_phot has no z trend and is centred on log10(4000).
    slope, intercept = np.polyfit(arrays32.redshift, np.log10(rescaled), 1)
    assert abs(slope) < 1e-8
    assert np.mean(np.log10(rescaled)) == pytest.approx(np.log10(4000.0), abs=1e-8)


def test_standardised_on_training_fold(arrays32: ClusterArrays) -> None:
    train = np.arange(0, 60)
    pre = fit_preprocessing(arrays32, train, bands="multi")
    x = pre.transform_images(arrays32.images[train], arrays32.redshift[train]).double()
    assert x.shape == (60, 3, 32, 32)
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-4)
    # Test clusters do not enter any statistic: corrupt them, same fit.
    images = arrays32.images.copy()
    images[60:] *= 50
    labels = arrays32.log10_m500c.copy()
    labels[60:] = 20.0
    other = ClusterArrays(images, arrays32.redshift, labels, arrays32.positions)
    assert fit_preprocessing(other, train, bands="multi") == pre


def test_single_band_sums_bands(arrays32: ClusterArrays) -> None:
    pre = fit_preprocessing(arrays32, np.arange(50), bands="single")
    x = pre.transform_images(arrays32.images[:4], arrays32.redshift[:4])
    assert x.shape == (4, 1, 32, 32)
    total = arrays32.images[:4].sum(axis=1) * pre.count_scale(arrays32.redshift[:4])[:, None, None]
    expected = (np.log10(total + 1) - pre.image_mean) / pre.image_std
    np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_target_scaling_roundtrip(arrays32: ClusterArrays) -> None:
    train = np.arange(40)
    pre = fit_preprocessing(arrays32, train, bands="single")
    y = pre.scale_target(arrays32.log10_m500c[train])
    assert y.min() == pytest.approx(-1.0) and y.max() == pytest.approx(1.0)
    np.testing.assert_allclose(pre.unscale_target(y), arrays32.log10_m500c[train])


def test_save_load(tmp_path, arrays32: ClusterArrays) -> None:
    pre = fit_preprocessing(arrays32, np.arange(30), bands="multi")
    path = pre.save(tmp_path / "pre.json")
    assert Preprocessing.load(path) == pre
    with pytest.raises(CheckpointError, match="does not exist"):
        Preprocessing.load(tmp_path / "missing.json")
