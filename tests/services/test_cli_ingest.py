"""`clustermass ingest ...` and `clustermass crossmatch` through the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import create_database, drop_database
from tests.survey.conftest import make_catalogue, make_image, tiny_spec

runner = CliRunner()


def run_cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def private_db(admin_url: str) -> Iterator[str]:
    from db import migrate

    url = create_database(admin_url, "cmcli")
    migrate.upgrade(url, "head")
    yield url
    from services.database import _engine_for

    _engine_for(url).dispose()
    drop_database(admin_url, url)


@pytest.fixture
def cli_env(private_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    from services.settings import get_settings

    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", private_db)
    monkeypatch.setenv("CLUSTERMASS_DATA_DIR", str(tmp_path / "store"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _spec(tmp_path: Path, name: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(tiny_spec(name).model_dump(mode="json")))
    return p


def test_catalogue_twice_and_crossmatch(cli_env: Path) -> None:
    m = np.full(20, 1.0)
    m[0] = np.nan
    a = make_catalogue(cli_env / "a.fits", M500=m)
    out = run_cli("ingest", "catalogue", str(a), "--spec", str(_spec(cli_env, "cli_a")))
    assert "partial" in out and "19 of 20 rows" in out and "row 1 column 'M500'" in out
    out = run_cli("ingest", "catalogue", str(a), "--spec", str(_spec(cli_env, "cli_a")))
    assert "skipped" in out and "already ingested" in out
    b = make_catalogue(cli_env / "b.fits", ID=np.array([f"B{i}" for i in range(20)]))  # same sky
    run_cli("ingest", "catalogue", str(b), "--spec", str(_spec(cli_env, "cli_b")))
    out = run_cli("crossmatch", "cli_a", "cli_b", "--max-sep", "10")
    assert "19 matches" in out  # row 0 of a was rejected


def test_bad_input_gives_one_line_errors(cli_env: Path) -> None:
    (cli_env / "junk.fits").write_text("not fits at all")
    out = run_cli("ingest", "catalogue", str(cli_env / "junk.fits"), "--spec", "mcxc", code=2)
    assert "junk.fits: not a FITS file" in out and "Traceback" not in out
    out = run_cli("ingest", "catalogue", str(cli_env / "junk.fits"), "--spec", "nope", code=2)
    assert "unknown spec 'nope'" in out
    img = make_image(cli_env / "img.fits", np.ones((30, 30)), with_wcs=False)
    out = run_cli("ingest", "image", str(img), "--exposure-s", "1000", "--ra", "10",
                  "--dec", "1", "--z", "0.2", code=2)  # fmt: skip
    assert "no celestial WCS" in out
    out = run_cli("ingest", "image", str(img), "--exposure-s", "1000", code=2)
    assert "which cluster?" in out
    out = run_cli("crossmatch", "nope_a", "nope_b", code=2)
    assert "no catalogue named 'nope_a'" in out


def test_single_image_file_with_options(cli_env: Path) -> None:
    rng = np.random.default_rng(3)
    img = make_image(cli_env / "c.fits", rng.poisson(1.0, (300, 300)).astype(float),
                     pix_deg=0.002)  # fmt: skip
    out = run_cli("ingest", "image", str(img), "--exposure-s", "1500", "--band", "0.5-2.0",
                  "--instrument", "TestScope", "--ra", "150", "--dec", "2", "--z", "0.3")  # fmt: skip
    assert "ingested" in out and "TestScope/0.5-2keV" in out


def test_galaxies_print_the_velocity_diagnostics(cli_env: Path) -> None:
    from astropy.table import Table

    from survey.galaxies import C_KMS

    host = make_catalogue(cli_env / "host.fits", n=1, RA=[210.0], DEC=[-5.0], Z=[0.25])
    run_cli("ingest", "catalogue", str(host), "--spec", str(_spec(cli_env, "cli_gal_host")))
    rng = np.random.default_rng(3)
    v = rng.normal(0, 900.0, 400)
    v = v[(v > -2.3 * 900) & (v < 1.8 * 900)]  # a member list clipped by hand
    Table(
        {"ra": 210 + rng.normal(0, 0.05, v.size), "dec": -5 + rng.normal(0, 0.05, v.size),
         "z": 0.25 + v * 1.25 / C_KMS}
    ).write(cli_env / "clipped.csv")  # fmt: skip
    args = ("--catalogue", "cli_gal_host", "--id", "CL0000")
    out = " ".join(run_cli("ingest", "galaxies", str(cli_env / "clipped.csv"), *args).split())
    assert "interlopers mixture, sigma_v from mixture" in out
    assert "flags: truncated" in out and "excess kurtosis -" in out
    assert "velocity distribution looks truncated" in out
    out = run_cli(
        "ingest", "galaxies", str(cli_env / "clipped.csv"), *args, "--interlopers",
        "shifting_gapper",
    )  # fmt: skip
    assert "interlopers shifting_gapper, sigma_v from biweight" in " ".join(out.split())
