"""Precision choice: native-bf16 detection, ``training.precision``, recorded and logged use.

The CPU flags are monkeypatched, so the detection is tested for CPUs with and without native
bf16 on any machine; forcing bf16 runs everywhere (CPU autocast emulates bf16 where the
hardware lacks it) and must stay close to fp32.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from models import runtime
from models.config import RunConfig
from models.data import ClusterArrays
from models.errors import ModelConfigError
from models.inference import network_outputs, predict
from models.networks import MultiModalCNN
from models.runio import write_fold
from models.runtime import cpu_flags, cpu_has_native_bf16, resolve_precision
from models.training import train_fold
from tests.models.conftest import tiny_config

CPU = torch.device("cpu")
EPYC_FLAGS = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma", "sha_ni"})  # AVX2 only
SKYLAKE_X_FLAGS = EPYC_FLAGS | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}  # no BF16
COOPER_LAKE_FLAGS = SKYLAKE_X_FLAGS | {"avx512_bf16"}
SAPPHIRE_RAPIDS_FLAGS = COOPER_LAKE_FLAGS | {"amx_tile", "amx_bf16", "amx_int8"}


def _fake_cpu(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str] | None) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda *a, **k: flags)


def test_cpu_flags_reads_the_flags_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16\n\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") is None
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert cpu_flags(tmp_path / "arm") is None


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        (EPYC_FLAGS, False),
        (SKYLAKE_X_FLAGS, False),  # AVX512 alone emulates bf16
        (COOPER_LAKE_FLAGS, True),
        (SAPPHIRE_RAPIDS_FLAGS, True),
        (frozenset({"avx2", "amx_bf16"}), True),
    ],
)
def test_native_bf16_needs_avx512_bf16_or_amx_bf16(flags: frozenset[str], native: bool) -> None:
    assert cpu_has_native_bf16(flags) is native


@pytest.mark.parametrize(
    ("flags", "setting", "amp", "expected"),
    [
        (EPYC_FLAGS, "auto", True, "fp32"),
        (SKYLAKE_X_FLAGS, "auto", True, "fp32"),
        (COOPER_LAKE_FLAGS, "auto", True, "bf16"),
        (SAPPHIRE_RAPIDS_FLAGS, "auto", True, "bf16"),
        (SAPPHIRE_RAPIDS_FLAGS, "auto", False, "fp32"),
        (SAPPHIRE_RAPIDS_FLAGS, "fp32", True, "fp32"),
        (EPYC_FLAGS, "bf16", True, "bf16"),
        (EPYC_FLAGS, "bf16", False, "bf16"),
    ],
)
def test_resolve_precision_on_cpu(
    monkeypatch: pytest.MonkeyPatch, flags: frozenset[str], setting: str, amp: bool, expected: str
) -> None:
    _fake_cpu(monkeypatch, flags)
    assert resolve_precision(setting, CPU, amp=amp) == expected


def test_forcing_bf16_on_an_emulating_cpu_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fake_cpu(monkeypatch, EPYC_FLAGS)
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        assert resolve_precision("bf16", CPU) == "bf16"
    assert "emulated" in caplog.text
    caplog.clear()
    _fake_cpu(monkeypatch, COOPER_LAKE_FLAGS)
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        assert resolve_precision("bf16", CPU) == "bf16"
    assert "emulated" not in caplog.text


def test_without_cpuinfo_torch_probes_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cpu(monkeypatch, None)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert cpu_has_native_bf16() is True


def test_bad_precision_settings_are_refused() -> None:
    with pytest.raises(ModelConfigError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", CPU)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        RunConfig.from_config(model={"kind": "single"}, training={"precision": "half"})
    with pytest.raises(ModelConfigError, match="CUDA only"), runtime.autocast(CPU, "fp16"):
        pass


def test_this_machine_auto_follows_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever CPU runs the tests: 'auto' is bf16 exactly when its flags say native bf16."""
    monkeypatch.setattr(runtime, "cpu_flags", cpu_flags)  # the real flags (conftest pins fp32)
    flags = cpu_flags()
    native = bool(flags and {"avx512_bf16", "amx_bf16"} & flags)
    assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")


def test_default_precision_keeps_the_run_key() -> None:
    """``precision: auto`` (the default) is left out of the key: older run keys still match."""
    cfg = RunConfig.from_config(model={"kind": "single"})
    data = cfg.model_dump(mode="json")
    assert data["training"]["precision"] == "auto"
    del data["training"]["precision"]
    data["training"]["cpu_micro_batch"] = 10  # the old default, which 'auto' replaced
    old = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert cfg.key() == old
    forced = RunConfig.from_config(model={"kind": "single"}, training={"precision": "bf16"})
    fp32 = RunConfig.from_config(model={"kind": "single"}, training={"precision": "fp32"})
    assert len({cfg.key(), forced.key(), fp32.key()}) == 3
    assert "precision: auto" in cfg.to_yaml()


def test_auto_precision_is_recorded_and_logged(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    arrays32: ClusterArrays,
    tmp_path: Path,
) -> None:
    _fake_cpu(monkeypatch, EPYC_FLAGS)
    cfg = tiny_config("single", training={"max_epochs": 1, "device": "cpu"})
    with caplog.at_level(logging.INFO, logger="models.training"):
        r = train_fold(arrays32, cfg, 0)
    assert r.precision == "fp32" and r.history["precision"] == "fp32"
    assert "precision 'auto' -> fp32 on cpu" in caplog.text
    assert "native bf16 flags: none" in caplog.text
    hist = json.loads((write_fold(tmp_path, r) / "history.json").read_text())
    assert hist["precision"] == "fp32" and hist["device"] == "cpu"


def test_forced_bf16_training_runs_and_stays_close_to_fp32(arrays32: ClusterArrays) -> None:
    """bf16 autocast on any CPU: one epoch, predictions within 0.05 dex of the same fp32 run.

    (Measured 0.017 dex on a 0.55 dex spread; over more epochs the two trajectories drift
    apart like two seeds would, which says nothing about the arithmetic.)
    """
    kw = {"max_epochs": 1, "device": "cpu"}
    fp32 = train_fold(arrays32, tiny_config("single", training={**kw, "precision": "fp32"}), 0)
    bf16 = train_fold(arrays32, tiny_config("single", training={**kw, "precision": "bf16"}), 0)
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert bf16.history["precision"] == "bf16"
    assert np.all(np.isfinite(bf16.test_prediction))
    np.testing.assert_allclose(bf16.test_prediction, fp32.test_prediction, atol=0.05)
    assert bf16.history["train_loss"][0] == pytest.approx(fp32.history["train_loss"][0], rel=0.1)
    # the weights stay fp32 (autocast casts inside the ops only)
    assert all(v.dtype == torch.float32 for v in bf16.model_state.state_dict.values())


def test_bf16_prediction_matches_fp32_on_the_same_weights(arrays32: ClusterArrays) -> None:
    """Same trained weights: bf16 inference within 0.02 dex of fp32, channels-last or not."""
    r = train_fold(arrays32, tiny_config("single", training={"max_epochs": 1}), 0)
    test = arrays32.subset(r.split.test)
    ref = predict(r.model_state, r.preprocessing, test, precision="fp32", channels_last=False)
    for cl in (True, False):
        out = predict(r.model_state, r.preprocessing, test, precision="bf16", channels_last=cl)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, ref, atol=0.02)
        assert np.abs(out - ref).max() > 0  # bf16 really ran


def test_multimodal_bf16_forward_is_close_to_fp32() -> None:
    """The factorised multimodal layer under bf16 autocast: finite, close to fp32."""
    torch.manual_seed(0)
    net = MultiModalCNN(image_size=64, cube_size=16)
    g = torch.Generator().manual_seed(1)
    image, kde = torch.randn(6, 3, 64, 64, generator=g), torch.randn(6, 1, 16, 16, 16, generator=g)
    ref = network_outputs(net, image, kde, precision="fp32", channels_last=False)
    out = network_outputs(net, image, kde, precision="bf16")
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert net.branch3d[0].weight.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.02 * float(ref.abs().max()))
