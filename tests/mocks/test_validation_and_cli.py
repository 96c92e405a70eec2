"""The paper's proxy-scatter method, the CLI, and the package's import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from typer.testing import CliRunner

from cli.main import app
from mocks import MockParameterError
from mocks.validation import proxy_scatter


def _synthetic(n: int = 20000, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    m = 10 ** rng.uniform(13.5, 15.0, n)
    mu = np.log(m / 2e14)
    return Table(
        {
            "m500c": m,
            "snapshot": rng.integers(0, 3, n),
            "a": np.exp(1.0 + 1.5 * mu + 0.3 * rng.standard_normal(n)),  # sigma_lnM = 0.2
            "b": np.exp(-2.0 + 0.5 * mu + 0.2 * rng.standard_normal(n)),  # sigma_lnM = 0.4
        }
    )


def test_single_proxy_scatter_is_sigma_over_slope() -> None:
    t = _synthetic()
    assert proxy_scatter(t, ["a"]).sigma == pytest.approx(0.2, rel=0.03)
    res = proxy_scatter(t, ["b"])
    assert res.sigma == pytest.approx(0.4, rel=0.03)
    np.testing.assert_allclose(res.slopes[:, 0], 0.5, atol=0.02)


def test_independent_proxies_combine_in_inverse_quadrature() -> None:
    expected = 1 / np.sqrt(1 / 0.2**2 + 1 / 0.4**2)
    assert proxy_scatter(_synthetic(), ["a", "b"]).sigma == pytest.approx(expected, rel=0.03)


def test_non_positive_values_are_dropped_and_counted() -> None:
    t = _synthetic(2000)
    t["a"][:10] = -1.0
    res = proxy_scatter(t, ["a"])
    assert res.n_dropped == 10 and res.n_used == 1990
    with pytest.raises(MockParameterError, match="unknown column 'nope'"):
        proxy_scatter(t, ["nope"])


def test_cli_writes_a_catalogue(tmp_path: Path) -> None:
    cfg = tmp_path / "small.yaml"
    cfg.write_text("snapshot_redshifts: [0.2]\nbatch_size: 8\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["mock", "--n", "5", "--seed", "3", "--out", str(out), "--config", str(cfg)]
    )
    assert res.exit_code == 0, res.output
    assert (out / "manifest.json").is_file() and len(list((out / "maps").iterdir())) == 5
    again = CliRunner().invoke(app, ["mock", "--n", "5", "--out", str(out), "--config", str(cfg)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["mock", "--n", "0", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "n_clusters" in res.output


def test_mocks_imports_no_service_code_and_writes_nothing_home(tmp_path: Path) -> None:
    """The science package stays pure, and colossus keeps no cache under $HOME."""
    code = (
        "import sys, mocks, mocks.validation\n"
        "mocks.generate(mocks.MockConfig(n_clusters=3, seed=1, snapshot_redshifts=(0.2,)))\n"
        "bad = [m for m in ('db', 'services', 'flows', 'sqlalchemy', 'celery', 'prefect') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(home.iterdir()) == []


def test_docs_describe_every_truth_column() -> None:
    from mocks.columns import REQUIRED_COLUMNS

    text = (Path(__file__).parents[2] / "docs" / "mocks.md").read_text()
    missing = [c for c in REQUIRED_COLUMNS if f"`{c}`" not in text]
    assert not missing, f"docs/mocks.md does not describe {missing}"
    for img in ("mock_maps_massive", "mock_maps_group", "mock_lx_m", "mock_sigmav_m"):
        png = Path(__file__).parents[2] / "docs" / "img" / f"{img}.png"
        assert png.is_file() and png.stat().st_size < 300_000
