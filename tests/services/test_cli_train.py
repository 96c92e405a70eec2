"""`clustermass train` / `clustermass benchmark` on a tiny catalogue in the mocks contract.

The mocks package lands on main separately; these tests install a stand-in ``mocks`` module
whose ``read_catalogue`` returns a synthetic catalogue with the contract's attributes (truth
QTable, counts_total (N, 3, H, W), galaxies structured array), so the command wiring is tested
whether or not the real package is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from cli.main import app
from tests.models.synthetic import make_catalogue

runner = CliRunner()


@pytest.fixture
def fake_mocks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    torch.set_num_threads(1)
    data = tmp_path / "catalogue"
    data.mkdir()
    cat = make_catalogue(64, 64, seed=3)
    import services.jobs.data

    monkeypatch.setattr(services.jobs.data, "read_catalogue", lambda path: cat)
    return data


def _config(tmp_path: Path, kind: str, **extra) -> Path:
    args = {"image_size": 64, "cube_size": 16} if kind == "multimodal" else {"input_size": 64}
    cfg = {
        "model": {"kind": kind, "args": args},
        "training": {"max_epochs": 1, "batch_size": 16, "num_threads": 1},
        "data": {"kde": {"n_grid": 16}},
        **extra,
    }
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_command(fake_mocks: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = runner.invoke(
        app,
        ["train", "--model", "single", "--config", str(_config(tmp_path, "single")),
         "--data", str(fake_mocks), "--out", str(out), "--folds", "0,1", "--n-boot", "10"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "sigma_lnM" in res.output and "run written to" in res.output
    (run_dir,) = out.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["per_fold"]) == {"0", "1"}
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["cv"]["folds"] == [0, 1] and saved["model"]["args"] == {"input_size": 64}
    assert (run_dir / "fold_0_m0" / "weights.pt").is_file()


def test_benchmark_command(fake_mocks: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    res = runner.invoke(
        app,
        ["benchmark", "--data", str(fake_mocks), "--out", str(out), "--models", "single,multimodal",
         "-c", str(_config(tmp_path, "single")), "-c", str(_config(tmp_path, "multimodal")),
         "--folds", "0", "--n-boot", "5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for name in ("benchmark.csv", "benchmark.md", "benchmark.png", "benchmark.json"):
        assert (out / name).is_file()
    md = (out / "benchmark.md").read_text()
    assert "Single-band CNN" in md and "Multimodal CNN" in md and "N_phot within R500c" in md


def test_bad_model_name_is_one_line(fake_mocks: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["train", "--model", "resnet", "--data", str(fake_mocks), "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert "choose one of ['single', 'multi', 'multimodal']" in res.output


def test_a_folder_that_is_not_a_mock_catalogue_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["train", "--model", "single", "--data", str(tmp_path), "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert "manifest.json" in res.output and "not a mock catalogue folder" in res.output


def test_model_and_config_must_agree(fake_mocks: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["train", "--model", "multi", "--config", str(_config(tmp_path, "single")),
         "--data", str(fake_mocks), "--out", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 2 and "configures 'single'" in res.output
