"""Redshift normalisation, log transform and standardisation from training clusters only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from models.data import ClusterArrays
from models.errors import CheckpointError, DataError
from models.preprocessing import Preprocessing, fit_preprocessing, select_bands


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


# --- contracts checked by mutation testing (docs/testing.md) ---------------------------------


def _tiny(
    totals: list[float], z: list[float], logm: list[float], kde: np.ndarray | None = None
) -> ClusterArrays:
    """Clusters of one band, 2 x 2 pixels, with the given total counts (a tenth to 4 tenths)."""
    share = np.array([0.1, 0.2, 0.3, 0.4]).reshape(1, 1, 2, 2)
    images = np.asarray(totals, dtype=np.float64).reshape(-1, 1, 1, 1) * share
    return ClusterArrays(images, np.asarray(z, float), np.asarray(logm, float), kde_cubes=kde)


def test_select_bands_sums_numpy_and_torch_images_into_one_channel() -> None:
    images = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    for x in (images, torch.as_tensor(images)):
        single = select_bands(x, "single")
        assert tuple(single.shape) == (2, 1, 2, 2)
        np.testing.assert_array_equal(np.asarray(single)[:, 0], images.sum(axis=1))
        assert select_bands(x, "multi") is x
    with pytest.raises(DataError, match=r"bands must be 'single' or 'multi'; got 'rgb'"):
        select_bands(images, "rgb")  # type: ignore[arg-type]


def test_network_inputs_are_float32_and_differentiable_whatever_the_counts(
    arrays32: ClusterArrays,
) -> None:
    pre = fit_preprocessing(arrays32, np.arange(40), bands="single")
    counts, z = arrays32.images[:3], arrays32.redshift[:3]
    ref = pre.transform_images(counts.astype(np.float32), z)
    for c in (counts.astype(np.float64), np.rint(counts).astype(np.int32)):
        x = pre.transform_images(c, z)
        assert x.dtype == torch.float32
    assert ref.dtype == torch.float32
    # Saliency on raw counts needs the gradient through the transform (a tensor input that
    # requires grad must not be turned into a numpy array).
    t = torch.as_tensor(counts.astype(np.float32)).requires_grad_(True)
    out = pre.transform_images(t, z)
    torch.testing.assert_close(out.detach(), ref)
    out.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all() and (t.grad > 0).all()


def test_float32_redshifts_and_masses_give_the_float64_result(arrays32: ClusterArrays) -> None:
    pre = fit_preprocessing(arrays32, np.arange(40), bands="single")
    z32 = arrays32.redshift[:8].astype(np.float32)
    np.testing.assert_allclose(pre.count_scale(z32), pre.count_scale(z32.astype(float)), rtol=1e-13)
    m32 = arrays32.log10_m500c[:8].astype(np.float32)
    y = pre.scale_target(m32)
    np.testing.assert_allclose(y, pre.scale_target(m32.astype(float)), rtol=0, atol=1e-14)
    y32 = y.astype(np.float32)
    np.testing.assert_allclose(
        pre.unscale_target(y32), pre.unscale_target(y32.astype(float)), rtol=0, atol=1e-13
    )


def test_image_statistics_are_exact_on_a_tiny_sample() -> None:
    # Two clusters, one band, 2 x 2 pixels: the mean and std are over exactly 8 pixels.
    arr = _tiny([400.0, 4000.0], [0.1, 0.3], [14.0, 15.0])
    pre = fit_preprocessing(arr, np.array([0, 1]), bands="single")  # 2 clusters are enough
    x = np.log10(arr.images * pre.count_scale(arr.redshift)[:, None, None, None] + 1.0)
    assert pre.image_mean == pytest.approx(x.mean(), rel=1e-6)  # the transform is float32
    assert pre.image_std == pytest.approx(x.std(), rel=1e-5)
    with pytest.raises(DataError, match="need at least 2 training clusters to fit .* got 1"):
        fit_preprocessing(arr, np.array([1]), bands="single")
    # A float index array (e.g. read back from JSON) selects the same clusters.
    assert fit_preprocessing(arr, np.array([0.0, 1.0]), bands="single") == pre


def test_the_redshift_fit_counts_an_empty_map_as_one_photon() -> None:
    # log10 N_phot with N_phot floored at 1: maps of 0 and 1 photon both give 0.
    arr = _tiny([0.0, 1.0, 100.0, 1000.0], [0.1, 0.2, 0.3, 0.4], [14.0, 14.2, 14.4, 14.6])
    pre = fit_preprocessing(arr, np.arange(4), bands="single")
    slope, intercept = np.polyfit(arr.redshift, [0.0, 0.0, 2.0, 3.0], 1)
    assert (pre.z_slope, pre.z_intercept) == pytest.approx((slope, intercept), rel=1e-12)


def test_one_redshift_has_no_trend_to_remove() -> None:
    arr = _tiny([100.0, 1000.0, 10.0], [0.2, 0.2, 0.2], [14.0, 14.5, 15.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rank warning from a fit on one redshift
        pre = fit_preprocessing(arr, np.arange(3), bands="single")
    assert pre.z_slope == 0.0 and pre.z_intercept == pytest.approx(2.0, rel=1e-12)


def test_a_target_without_range_cannot_be_scaled() -> None:
    arr = _tiny([100.0, 1000.0], [0.1, 0.2], [14.5, 14.5])
    with pytest.raises(DataError, match=r"^training log10_m500c has zero range: cannot scale"):
        fit_preprocessing(arr, np.arange(2), bands="single")


def test_kde_cubes_are_standardised_on_the_training_fold() -> None:
    cubes = np.random.default_rng(2).gamma(2.0, size=(4, 3, 3, 3))
    cubes /= cubes.sum(axis=(1, 2, 3), keepdims=True)  # as models.kde makes them: std << 1
    arr = _tiny([100.0, 300.0, 1000.0, 50.0], [0.1, 0.2, 0.3, 0.4], [14, 14.3, 14.6, 15], cubes)
    pre = fit_preprocessing(arr, np.arange(3), bands="single", with_kde=True)
    assert pre.kde_mean == pytest.approx(cubes[:3].mean(), rel=1e-12)
    assert pre.kde_std == pytest.approx(cubes[:3].std(), rel=1e-9)
    k = pre.transform_kde(cubes[:3])
    assert k.dtype == torch.float32 and tuple(k.shape) == (3, 1, 3, 3, 3)
    assert float(k.double().mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(k.double().std(unbiased=False)) == pytest.approx(1.0, abs=1e-6)
    plain = fit_preprocessing(arr, np.arange(3), bands="single")
    with pytest.raises(
        DataError, match=r"^this Preprocessing was fitted without KDE cubes \(kde_mean is None\)$"
    ):
        plain.transform_kde(cubes)
    with pytest.raises(
        DataError, match=r"^with_kde=True but arrays.kde_cubes is None \(see models.kde\)$"
    ):
        fit_preprocessing(
            _tiny([1.0, 2.0], [0.1, 0.2], [14, 15]), [0, 1], bands="single", with_kde=True
        )
    flat = _tiny([100.0, 300.0], [0.1, 0.2], [14, 15], np.ones((2, 3, 3, 3)))
    with pytest.raises(DataError, match=r"^training KDE cubes are constant: cannot standardise$"):
        fit_preprocessing(flat, [0, 1], bands="single", with_kde=True)


def test_saved_preprocessing_is_sorted_one_field_per_line(tmp_path, arrays32) -> None:
    pre = fit_preprocessing(arrays32, np.arange(30), bands="multi")
    lines = pre.save(tmp_path / "pre.json").read_text().splitlines()
    keys = [line.split('"')[1] for line in lines[1:-1]]
    assert keys == sorted(Preprocessing.__dataclass_fields__)  # stable, diffable records
    assert all(line.startswith('  "') and not line.startswith("   ") for line in lines[1:-1])
    with pytest.raises(CheckpointError, match=r"bad preprocessing record: .*'colour'"):
        Preprocessing.from_dict({**pre.to_dict(), "colour": "red"})


def test_the_redshift_fit_of_float32_maps_is_computed_in_float64() -> None:
    # Map files hold float32 counts; the fit of log10 N_phot on z must not round in float32.
    arr = _tiny([123.0, 4567.0, 89.0, 10111.0], [0.05, 0.2, 0.35, 0.5], [14, 14.2, 14.4, 14.6])
    maps = ClusterArrays(arr.images.astype(np.float32), arr.redshift, arr.log10_m500c)
    pre = fit_preprocessing(maps, np.arange(4), bands="single")
    totals = maps.images.reshape(4, -1).sum(axis=1).astype(np.float64)
    slope, intercept = np.polyfit(maps.redshift, np.log10(totals), 1)
    assert (pre.z_slope, pre.z_intercept) == pytest.approx((slope, intercept), rel=1e-13)


def test_statistics_streamed_in_chunks_equal_the_whole_sample_at_once() -> None:
    # 600 clusters: more than one chunk of 256 (a memory bound, not a change of statistic).
    rng = np.random.default_rng(7)
    n = 600
    cubes = rng.gamma(2.0, size=(n, 2, 2, 2))
    arr = _tiny(
        rng.uniform(50, 5000, n).tolist(),
        rng.uniform(0.05, 0.5, n).tolist(),
        rng.uniform(14, 15, n).tolist(),
        cubes,
    )
    train = np.arange(1, n)  # not starting at 0
    pre = fit_preprocessing(arr, train, bands="single", with_kde=True)
    x = np.log10(
        arr.images[train] * pre.count_scale(arr.redshift[train])[:, None, None, None] + 1.0
    )
    assert pre.image_mean == pytest.approx(x.mean(), rel=1e-6)
    assert pre.image_std == pytest.approx(x.std(), rel=1e-5)
    assert pre.kde_mean == pytest.approx(cubes[train].mean(), rel=1e-12)
    assert pre.kde_std == pytest.approx(cubes[train].std(), rel=1e-9)


def test_constant_training_images_cannot_be_standardised() -> None:
    # Counts exactly on the redshift trend, spread evenly: every pixel is the same.
    images = np.full((3, 1, 2, 2), 1000.0)
    arr = ClusterArrays(images, np.array([0.1, 0.2, 0.3]), np.array([14.0, 14.5, 15.0]))
    with pytest.raises(DataError, match=r"^training images are constant after log10\(N \+ 1\)"):
        fit_preprocessing(arr, np.arange(3), bands="single")


def test_a_record_with_half_a_kde_standardisation_is_refused() -> None:
    pre = Preprocessing("single", 0.0, 3.0, 4000.0, 1.0, 0.5, 14.0, 15.0, kde_mean=0.1)
    with pytest.raises(DataError, match="fitted without KDE cubes"):
        pre.transform_kde(np.ones((1, 2, 2, 2)))
