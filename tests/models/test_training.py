"""train_fold / predict wiring on tiny configs; a slow test checks a real mass trend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.crossval import cross_validate
from models.data import ClusterArrays
from models.folds import make_folds
from models.inference import ModelState, predict
from models.training import TrainProgress, train_fold
from tests.models.conftest import tiny_config
from tests.models.synthetic import make_arrays


def test_train_fold_wiring(arrays32: ClusterArrays) -> None:
    cfg = tiny_config("single", training={"max_epochs": 3})
    reports: list[TrainProgress] = []
    r = train_fold(arrays32, cfg, 0, progress=reports.append)
    folds = make_folds(arrays32)
    np.testing.assert_array_equal(r.split.test, np.flatnonzero(folds == 0))
    assert r.test_prediction.shape == r.split.test.shape and np.all(np.isfinite(r.test_prediction))
    assert r.test_sigma is None
    h = r.history
    assert h["epochs_run"] == 3 and len(h["val_loss"]) == 3
    assert h["best_epoch"] == int(np.argmin(h["val_loss"]))
    # progress: one report per step plus one per epoch, the epoch reports carry val_loss
    epoch_reports = [p for p in reports if p.val_loss is not None]
    assert len(epoch_reports) == 3 and epoch_reports[-1].best_val_loss == min(h["val_loss"])
    assert len(reports) == 3 * (reports[0].steps_per_epoch + 1)
    # predict() with the saved state reproduces the fold's test predictions
    test = arrays32.subset(r.split.test)
    again = predict(r.model_state, r.preprocessing, test)
    np.testing.assert_allclose(again, r.test_prediction, atol=1e-5)


def test_best_weights_restored(arrays32: ClusterArrays) -> None:
    cfg = tiny_config("single", training={"max_epochs": 4, "learning_rate": 3e-3})
    r = train_fold(arrays32, cfg, 1)
    val = arrays32.subset(r.split.val)
    pred = predict(r.model_state, r.preprocessing, val)
    y = r.preprocessing.scale_target(val.log10_m500c)
    p = r.preprocessing.scale_target(pred)
    assert np.mean((p - y) ** 2) == pytest.approx(min(r.history["val_loss"]), rel=1e-4)


def test_weights_of_the_best_not_the_last_epoch_are_returned(
    arrays32: ClusterArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Script the validation losses so that the best epoch (1) is neither the first nor the last,
    # and record the weights the network had when each validation loss was measured.
    import copy

    import models.training as training

    scripted = iter([0.9, 0.2, 0.5, 0.7])
    seen: list[dict[str, torch.Tensor]] = []
    real_evaluate = training._evaluate

    def evaluate(model, *args, **kwargs):
        real_evaluate(model, *args, **kwargs)
        seen.append(copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()}))
        return next(scripted)

    monkeypatch.setattr(training, "_evaluate", evaluate)
    cfg = tiny_config("single", training={"max_epochs": 4, "patience": 10, "learning_rate": 3e-3})
    r = train_fold(arrays32, cfg, 1)
    assert r.history["val_loss"] == [0.9, 0.2, 0.5, 0.7] and r.history["best_epoch"] == 1
    returned = r.model_state.state_dict
    assert any(not torch.equal(seen[1][k], seen[-1][k]) for k in returned)  # weights moved on
    for k, v in returned.items():
        torch.testing.assert_close(v, seen[1][k], rtol=0, atol=0)
    # and the fold's out-of-fold predictions are those of the best epoch's network
    best = ModelState(r.model_state.network, seen[1])
    np.testing.assert_allclose(
        predict(best, r.preprocessing, arrays32.subset(r.split.test)), r.test_prediction, atol=1e-6
    )


def test_preprocessing_ignores_the_test_fold(arrays32: ClusterArrays) -> None:
    # Normalisation statistics come from the training folds only (science.md, flaw 5): wildly
    # corrupting the held-out fold's images must not change them.
    from dataclasses import replace

    cfg = tiny_config("single", training={"max_epochs": 1})
    fold = 0
    images = arrays32.images.astype(np.int64)
    corrupted = images.copy()
    test = make_folds(arrays32) == fold
    assert test.any() and not test.all()
    corrupted[test] *= 1_000_000
    clean = train_fold(replace(arrays32, images=images), cfg, fold)
    dirty = train_fold(replace(arrays32, images=corrupted), cfg, fold)
    np.testing.assert_array_equal(clean.split.test, np.flatnonzero(test))
    assert dirty.preprocessing == clean.preprocessing


def test_out_of_fold_predictions_are_aligned_with_their_clusters(arrays32: ClusterArrays) -> None:
    # Each cluster's out-of-fold prediction is what its own fold's network says about it alone.
    cfg = tiny_config("single", training={"max_epochs": 1}, cv={"folds": [0, 3]})
    res = cross_validate(arrays32, cfg)
    covered = np.isin(res.folds, [0, 3])
    assert np.all(np.isfinite(res.prediction[covered])) and np.all(
        np.isnan(res.prediction[~covered])
    )
    for r in res.fold_results:
        assert np.all(res.folds[r.split.test] == r.fold)
        spread = np.ptp(r.test_prediction)
        assert spread > 1e-4  # the predictions differ, so a misplaced one shows
        for i in r.split.test:
            alone = predict(r.model_state, r.preprocessing, arrays32.subset(np.array([i])))
            assert res.prediction[i] == pytest.approx(alone[0], abs=1e-5)


def test_assembled_predictions_follow_the_test_indices_in_any_order() -> None:
    # Folds whose test clusters are listed out of order, each "predicting" the true masses.
    from models.crossval import assemble
    from models.folds import FoldSplit
    from models.training import FoldResult

    rng = np.random.default_rng(4)
    truth = rng.uniform(13.5, 15.0, 40)
    folds = rng.integers(0, 4, truth.size)
    results = []
    for f in (2, 0, 3, 1):
        test = rng.permutation(np.flatnonzero(folds == f))
        split = FoldSplit(f, np.flatnonzero(folds != f), np.array([], int), test)
        for member in (1, 0):  # ensemble members of a fold, also out of order
            results.append(
                FoldResult(f, member, split, None, None, truth[test] + 0.01 * member, None)
            )
    res = assemble(tiny_config("single"), folds, results)
    np.testing.assert_allclose(res.prediction, truth + 0.005, rtol=0, atol=1e-12)


def test_early_stopping(arrays32: ClusterArrays) -> None:
    # A vanishing learning rate: the validation loss never improves after epoch 0.
    cfg = tiny_config("single", training={"max_epochs": 50, "patience": 2, "learning_rate": 1e-30})
    r = train_fold(arrays32, cfg, 0)
    assert r.history["stopped_early"] and r.history["epochs_run"] == 3
    assert r.history["best_epoch"] == 0


def test_seeded_runs_are_identical(arrays32: ClusterArrays) -> None:
    cfg = tiny_config("multi")  # dropout too
    a = train_fold(arrays32, cfg, 2)
    b = train_fold(arrays32, cfg, 2)
    np.testing.assert_array_equal(a.test_prediction, b.test_prediction)
    c = train_fold(arrays32, cfg, 2, member=1)
    assert not np.allclose(a.test_prediction, c.test_prediction)


def test_micro_batches_give_the_same_update(arrays32: ClusterArrays) -> None:
    base = tiny_config("single", training={"max_epochs": 1})
    micro = tiny_config("single", training={"max_epochs": 1, "cpu_micro_batch": 5})
    a = train_fold(arrays32, base, 0).model_state.state_dict
    b = train_fold(arrays32, micro, 0).model_state.state_dict
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_auto_micro_batch_follows_the_allocator(
    arrays32: ClusterArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cpu_micro_batch: auto`` trains the full batch where the CLI's allocator is active and in
    chunks of 10 elsewhere; the update is the same, and each fold records what it used."""
    import models.training as training

    cfg = tiny_config("single", training={"max_epochs": 1, "batch_size": 16})
    assert cfg.training.cpu_micro_batch == "auto"
    monkeypatch.setattr(training, "malloc_tuning_active", lambda: False)
    monkeypatch.setattr("models.runtime.malloc_tuning_active", lambda: False)
    chunked = train_fold(arrays32, cfg, 0)
    monkeypatch.setattr("models.runtime.malloc_tuning_active", lambda: True)
    full = train_fold(arrays32, cfg, 0)
    assert chunked.history["cpu_micro_batch"] == 10
    assert full.history["cpu_micro_batch"] is None
    a, b = chunked.model_state.state_dict, full.model_state.state_dict
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_gaussian_head_and_ensemble(arrays32: ClusterArrays, tmp_path) -> None:
    cfg = tiny_config(
        "single",
        model={"args": {"head": "gaussian"}},
        training={"loss": "gaussian_nll"},
        ensemble=2,
    )
    res = cross_validate(arrays32, cfg)
    test = res.folds == 0
    assert len(res.fold_results) == 2
    assert np.all(np.isfinite(res.prediction[test])) and np.all(np.isnan(res.prediction[~test]))
    assert res.sigma is not None and np.all(res.sigma[test] > 0)
    r0 = res.fold_results[0]
    mean, sigma = predict(
        r0.model_state, r0.preprocessing, arrays32.subset(r0.split.test), return_sigma=True
    )
    np.testing.assert_allclose(sigma, r0.test_sigma, rtol=1e-4)
    # mixture: total sigma >= mean aleatoric sigma
    members = np.stack([r.test_sigma for r in res.fold_results])
    assert np.all(res.sigma[test] >= np.sqrt((members**2).mean(0)) - 1e-9)
    # state round trip
    path = r0.model_state.save(tmp_path / "w.pt")
    again = predict(ModelState.load(path), r0.preprocessing, arrays32.subset(r0.split.test))
    np.testing.assert_allclose(again, mean, atol=1e-6)


def test_multimodal_wiring(arrays64: ClusterArrays) -> None:
    cfg = tiny_config("multimodal", training={"max_epochs": 1, "batch_size": 24})
    res = cross_validate(arrays64, cfg)
    r = res.fold_results[0]
    assert r.preprocessing.kde_std is not None and r.preprocessing.kde_std > 0
    assert np.all(np.isfinite(r.test_prediction))


@pytest.mark.slow
def test_single_band_learns_mass() -> None:
    arrays = make_arrays(480, 32, seed=5)
    cfg = tiny_config(
        "single",
        training={"max_epochs": 60, "patience": 10, "batch_size": 32},
        cv={"folds": [0, 1, 2]},
    )
    res = cross_validate(arrays, cfg)
    ok = np.isfinite(res.prediction)
    d = res.prediction[ok] - arrays.log10_m500c[ok]
    slope = np.polyfit(arrays.log10_m500c[ok], res.prediction[ok], 1)[0]
    # Counts scale as M^1.3 with 0.25 ln scatter: the floor is ~0.25/1.3 = 0.19 in ln M.
    assert np.std(d) * np.log(10) < 0.35
    assert 0.7 < slope < 1.2
    assert abs(d.mean()) < 0.05


@pytest.mark.gpu
def test_cuda_amp_training(arrays32: ClusterArrays) -> None:
    cfg = tiny_config("multi", training={"device": "cuda", "amp": True, "max_epochs": 2})
    r = train_fold(arrays32, cfg, 0)
    assert r.device.startswith("cuda") and np.all(np.isfinite(r.test_prediction))
    cpu = predict(r.model_state, r.preprocessing, arrays32.subset(r.split.test), device="cpu")
    # AMP (bf16/fp16) forward on the GPU vs fp32 on the CPU: close, not identical
    np.testing.assert_allclose(cpu, r.test_prediction, atol=0.02)


def test_absolute_galaxy_coordinates_are_rejected(arrays64: ClusterArrays) -> None:
    from dataclasses import replace

    from models.config import KDEConfig
    from models.crossval import ensure_kde
    from models.data import RaggedGalaxies
    from models.errors import DataError

    g = arrays64.galaxies
    shifted = RaggedGalaxies(g.offsets, g.x + 150.0, g.y + 80.0, g.v)  # box coordinates
    with pytest.raises(DataError, match="offsets from the cluster centre"):
        ensure_kde(replace(arrays64, galaxies=shifted), KDEConfig(n_grid=8))
