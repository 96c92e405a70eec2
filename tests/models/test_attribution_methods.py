"""Saliency, integrated gradients and SmoothGrad on tiny networks; the randomisation check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.attribution.errors import AttributionError
from models.attribution.methods import (
    AttributionSettings,
    LogMassOutput,
    attribute_clusters,
    attribute_inputs,
)
from models.attribution.sanity import randomisation_check, randomised_state
from models.config import KDEConfig
from models.crossval import ensure_kde
from models.data import ClusterArrays
from models.inference import input_tensors, predict
from models.preprocessing import fit_preprocessing
from models.registry import build_network
from models.training import FoldResult, train_fold
from tests.models.conftest import tiny_config


@pytest.fixture(scope="module")
def trained(arrays32: ClusterArrays) -> FoldResult:
    """Single-band CNN trained 20 epochs on the synthetic blobs (mass ~ brightness)."""
    cfg = tiny_config("single", training={"max_epochs": 20, "patience": 50})
    return train_fold(arrays32, cfg, 0)


@pytest.fixture(scope="module")
def multimodal_setup(arrays64: ClusterArrays):
    arrays = ensure_kde(arrays64, KDEConfig(n_grid=16))
    pre = fit_preprocessing(arrays, np.arange(len(arrays)), bands="multi", with_kde=True)
    torch.manual_seed(0)
    net = build_network({"kind": "multimodal", "args": {"image_size": 64, "cube_size": 16}})
    return arrays, pre, net.eval()


def test_the_tiny_model_learned_the_mass_trend(trained: FoldResult, arrays32) -> None:
    true = arrays32.log10_m500c[trained.split.test]
    assert np.corrcoef(trained.test_prediction, true)[0, 1] > 0.9


def test_saliency_is_finite_nonzero_and_input_shaped(trained: FoldResult, arrays32) -> None:
    idx = trained.split.test
    att = attribute_clusters(trained.model_state, trained.preprocessing, arrays32, idx)
    assert att.image.shape == (idx.size, 1, 32, 32) and att.image.dtype == np.float32
    assert np.isfinite(att.image).all() and (att.image >= 0).all()
    assert (att.image.reshape(idx.size, -1) > 0).mean(axis=1).min() > 0.5
    assert att.kde is None and att.delta is None
    # the prediction at the input is the model's prediction
    np.testing.assert_allclose(att.log10_m, trained.test_prediction, atol=1e-4)


def test_saliency_is_the_gradient_of_log10_mass_in_dex(trained: FoldResult, arrays32) -> None:
    """Central differences of the raw output times the target half-span (scaling undone)."""
    pre = trained.preprocessing
    net = trained.model_state.build("cpu")
    x, _ = input_tensors(arrays32, pre, trained.split.test[:2], needs_kde=False)
    sal = attribute_inputs(net, pre, x).image
    net, x = net.double(), x.double()  # float64 differences: no round-off at a small step
    eps = 1e-5
    rng = np.random.default_rng(0)
    checked = 0
    for n in range(2):
        for i, j in rng.integers(8, 24, (6, 2)):
            up, down = x[n : n + 1].clone(), x[n : n + 1].clone()
            up[0, 0, i, j] += eps
            down[0, 0, i, j] -= eps
            with torch.no_grad():
                d = (net(up)[0, 0] - net(down)[0, 0]).item() / (2 * eps)
            fd = abs(d) * pre.target_half_span
            if fd > 1e-5:  # skip the rare pixel whose slope vanishes
                assert sal[n, 0, i, j] == pytest.approx(fd, rel=1e-3)
                checked += 1
    assert checked >= 6


def test_integrated_gradients_completeness(trained: FoldResult, arrays32) -> None:
    """sum(attributions) = f(x) - f(x0) (Sundararajan et al. 2017, Prop. 1) to 3% + 3 mdex."""
    pre = trained.preprocessing
    net = trained.model_state.build("cpu")
    idx = trained.split.test
    x, _ = input_tensors(arrays32, pre, idx, needs_kde=False)
    wrapped = LogMassOutput(net, pre)
    x0 = torch.full_like(x[:1], -pre.image_mean / pre.image_std)  # zero counts
    with torch.no_grad():
        f_x, f_0 = wrapped(x).double().numpy(), float(wrapped(x0))
    delta_f = f_x - f_0
    errors = {}
    for steps in (8, 64):
        att = attribute_inputs(
            net, pre, x, method="integrated_gradients", settings=AttributionSettings(n_steps=steps)
        )
        total = att.image.reshape(idx.size, -1).sum(axis=1)
        errors[steps] = np.abs(total - delta_f)
        np.testing.assert_allclose(att.delta, total - delta_f, atol=2e-4)  # captum's residual
    assert np.all(errors[64] <= 0.03 * np.abs(delta_f) + 3e-3)
    # with the empty-map baseline, pixels without photons get exactly zero attribution
    empty = arrays32.images[idx].sum(axis=1, keepdims=True) == 0
    assert empty.any() and (att.image[empty] == 0).all() and (att.image[~empty] != 0).mean() > 0.9
    assert errors[64].mean() < errors[8].mean()  # the quadrature converges


def test_smoothgrad_is_seeded_batch_independent_and_reduces_to_the_gradient(
    trained: FoldResult, arrays32
) -> None:
    pre, idx = trained.preprocessing, trained.split.test[:6]
    kw = {"method": "smoothgrad"}
    a = attribute_clusters(
        trained.model_state, pre, arrays32, idx, settings=AttributionSettings(nt_samples=6), **kw
    ).image
    b = attribute_clusters(
        trained.model_state, pre, arrays32, idx,
        settings=AttributionSettings(nt_samples=6, batch_size=4), **kw,
    ).image  # fmt: skip
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
    c = attribute_clusters(
        trained.model_state, pre, arrays32, idx,
        settings=AttributionSettings(nt_samples=6, seed=1), **kw,
    ).image  # fmt: skip
    assert not np.allclose(a, c)
    # without noise SmoothGrad is the plain gradient: its absolute value is the saliency
    plain = attribute_clusters(
        trained.model_state, pre, arrays32, idx,
        settings=AttributionSettings(nt_samples=2, noise_level=0.0), **kw,
    ).image  # fmt: skip
    sal = attribute_clusters(trained.model_state, pre, arrays32, idx).image
    np.testing.assert_allclose(np.abs(plain), sal, rtol=1e-4, atol=1e-8)  # float32 sums


def test_multiband_maps_have_three_channels(arrays32: ClusterArrays) -> None:
    pre = fit_preprocessing(arrays32, np.arange(len(arrays32)), bands="multi")
    torch.manual_seed(0)
    net = build_network({"kind": "multi", "args": {"input_size": 32}})
    att = attribute_clusters(net, pre, arrays32, np.arange(5), method="integrated_gradients")
    assert att.image.shape == (5, 3, 32, 32) and np.isfinite(att.image).all()
    assert (np.abs(att.image).reshape(5, 3, -1).sum(axis=2) > 0).all()


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "smoothgrad"])
def test_multimodal_attributes_image_and_kde_cube(multimodal_setup, method: str) -> None:
    arrays, pre, net = multimodal_setup
    s = AttributionSettings(n_steps=16, nt_samples=3, batch_size=4)
    att = attribute_clusters(net, pre, arrays, np.arange(3), method=method, settings=s)
    assert att.image.shape == (3, 3, 64, 64) and att.kde.shape == (3, 1, 16, 16, 16)
    for m in (att.image, att.kde):
        assert np.isfinite(m).all() and (np.abs(m).reshape(3, -1).sum(axis=1) > 0).all()
    np.testing.assert_allclose(
        att.log10_m, predict(net, pre, arrays.subset(np.arange(3))), atol=1e-4
    )
    if method == "integrated_gradients":  # completeness over both inputs together
        total = att.image.reshape(3, -1).sum(1) + att.kde.reshape(3, -1).sum(1)
        wrapped = LogMassOutput(net, pre)
        x0 = torch.full((1, 3, 64, 64), -pre.image_mean / pre.image_std)
        k0 = torch.full((1, 1, 16, 16, 16), -pre.kde_mean / pre.kde_std)
        with torch.no_grad():
            f0 = float(wrapped(x0, k0))
        np.testing.assert_allclose(
            total, att.log10_m - f0, atol=0.05 * np.abs(att.log10_m - f0).max() + 2e-3
        )


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_channels_last_gives_the_same_maps(multimodal_setup, method: str) -> None:
    """NDHWC / NHWC inputs and weights (the default) change the layout, not the maps."""
    arrays, pre, net = multimodal_setup
    att = {
        cl: attribute_clusters(
            net,
            pre,
            arrays,
            np.arange(3),
            method=method,
            settings=AttributionSettings(n_steps=8, batch_size=4, channels_last=cl),
        )
        for cl in (False, True)
    }
    for name in ("image", "kde"):
        a, b = getattr(att[True], name), getattr(att[False], name)
        assert a.flags["C_CONTIGUOUS"] and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
    np.testing.assert_allclose(att[True].log10_m, att[False].log10_m, atol=1e-5)


def test_bad_inputs_are_refused(multimodal_setup, trained: FoldResult, arrays32) -> None:
    arrays, pre, net = multimodal_setup
    x, _ = input_tensors(arrays, pre, np.arange(2), needs_kde=True)
    with pytest.raises(AttributionError, match="KDE cube"):
        attribute_inputs(net, pre, x, None)
    with pytest.raises(AttributionError, match=r"choose one of \('saliency'"):
        attribute_clusters(trained.model_state, trained.preprocessing, arrays32, method="lime")
    with pytest.raises(AttributionError, match="baseline"):
        AttributionSettings(baseline="blur")


def test_randomisation_check_separates_trained_from_random(trained: FoldResult, arrays32) -> None:
    """Adebayo et al. (2018): maps of random weights must differ; a 2% weight jitter must not."""
    check = randomisation_check(
        trained.model_state, trained.preprocessing, arrays32, trained.split.test, cascade=True
    )
    assert check.random.shape == (trained.split.test.size,)
    assert check.median_random < 0.3
    assert check.median_perturbed > 0.7
    assert check.passed()
    # cascading from the output layer down: the fully randomised end is as low as `random`
    names = list(check.cascade)
    assert names[0] == "out" and names[-1] == "features.0"
    assert check.cascade[names[-1]] < 0.3
    # randomised_state replaces weights and keeps the trained ones elsewhere
    part = randomised_state(trained.model_state, layers=["out"])
    torch.testing.assert_close(
        part.state_dict["dense.0.weight"], trained.model_state.state_dict["dense.0.weight"]
    )
    assert not torch.equal(
        part.state_dict["out.weight"], trained.model_state.state_dict["out.weight"]
    )


@pytest.mark.gpu
def test_cuda_matches_cpu(trained: FoldResult, arrays32) -> None:
    idx = trained.split.test
    cpu = attribute_clusters(trained.model_state, trained.preprocessing, arrays32, idx)
    gpu = attribute_clusters(
        trained.model_state, trained.preprocessing, arrays32, idx, device="cuda"
    )
    np.testing.assert_allclose(gpu.image, cpu.image, rtol=1e-3, atol=1e-6)
