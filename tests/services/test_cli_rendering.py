"""Data text reaches the terminal verbatim: never rich markup, emoji codes or links (issue 15).

Cluster names, spec names, file names and units come from files a user (or an attacker) drops
in; the CLI prints them exactly as written, and a name that looks like markup neither crashes a
command nor styles its output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from cli.commands import pipeline
from cli.commands._common import console
from cli.main import app
from tests.conftest import create_database, drop_database
from tests.survey.conftest import make_catalogue, tiny_spec

runner = CliRunner()

CLOSING_TAG = "[/]"
STYLED = "[bold red]x[/] [link=http://evil.example]y[/link]"
EMOJI = ":x: :smile:"
SPEC_NAME = "[/]evil"
TRAILING_BACKSLASH = "A\\"


def run_cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


@pytest.fixture(scope="module")
def private_db(admin_url: str) -> Iterator[str]:
    from db import migrate

    url = create_database(admin_url, "cmrender")
    migrate.upgrade(url, "head")
    yield url
    from services.database import _engine_for

    _engine_for(url).dispose()
    drop_database(admin_url, url)


@pytest.fixture
def cli_env(private_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    from services.settings import get_settings

    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", private_db)
    monkeypatch.delenv("CLUSTERMASS_READ_ONLY_DATABASE_URL", raising=False)
    monkeypatch.setenv("CLUSTERMASS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _n_clusters(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(sa.text("SELECT count(*) FROM clusters"))
    engine.dispose()
    return int(n or 0)


def test_markup_like_names_are_printed_verbatim(cli_env: Path, private_db: str) -> None:
    names = [CLOSING_TAG, STYLED, EMOJI, TRAILING_BACKSLASH] + [f"CL{i}" for i in range(4, 10)]
    cat = make_catalogue(cli_env / "evil.fits", n=10, NAME=np.array(names))
    spec = cli_env / "evil.yaml"
    doc = tiny_spec(SPEC_NAME, name_columns=["NAME"]).model_dump(mode="json")
    spec.write_text(yaml.safe_dump(doc))
    before = _n_clusters(private_db)
    out = run_cli("ingest", "catalogue", str(cat), "--spec", str(spec))
    # The report names the spec exactly; the whole catalogue was ingested once, exit code 0.
    assert SPEC_NAME in out and "ingested" in out
    assert _n_clusters(private_db) == before + 10
    for name in (CLOSING_TAG, STYLED, EMOJI, TRAILING_BACKSLASH):
        out = run_cli("query", "cluster", name)
        assert f"cluster {name} (id" in out, out
        assert SPEC_NAME in out  # the catalogue column of the cluster table
    out = run_cli("query", "cluster", EMOJI)
    assert "\u274c" not in out and "\U0001f604" not in out  # no emoji substituted
    out = run_cli("query", "cluster", STYLED, "--format", "json")
    assert STYLED in out


def test_error_lines_quote_data_verbatim(cli_env: Path) -> None:
    (cli_env / "[").mkdir()
    bad = cli_env / "[" / "]junk[bold].fits"  # the path holds "[/]junk[bold].fits"
    bad.write_text("not fits at all")
    out = run_cli("ingest", "catalogue", str(bad), "--spec", "mcxc", code=2)
    assert "[/]junk[bold].fits: not a FITS file" in out and "Traceback" not in out
    assert out.startswith("error: ")


def test_units_in_headers_survive() -> None:
    with console.capture() as cap:
        pipeline.print_bins(
            [{"mass_lo": 14.0, "mass_hi": 14.5, "n": 3, "bias_dex": 0.01}], "[/]title :x:"
        )
        pipeline.print_benchmark([{"observable": "[red]M_gas[/]", "sigma_lnM": 0.1}], "t")
    text = cap.get()
    assert "bias [dex]" in text and "sigma_lnM [%]" in text and "paper [%]" in text
    assert "[/]title :x:" in text and "[red]M_gas[/]" in text


def test_lost_database_connection_is_one_line(
    cli_env: Path, private_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server drops the connection mid-query: one 'error:' line, exit 2, no traceback."""
    from sqlalchemy.orm import Session

    from db import results

    def dropped(session: Session, **_: object) -> list[dict[str, object]]:
        pid = session.scalar(sa.text("SELECT pg_backend_pid()"))
        admin = sa.create_engine(private_db)
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        admin.dispose()
        session.execute(sa.text("SELECT 1"))  # the server has closed this connection
        return []

    monkeypatch.setattr(results, "summary", dropped)
    out = run_cli("query", "runs", code=2)
    assert out.startswith("error: database connection failed or was lost: ")
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5"])
def test_crossmatch_refuses_meaningless_separation(cli_env: Path, value: str) -> None:
    out = run_cli("crossmatch", "a", "b", "--max-sep", value, code=2)
    assert "--max-sep" in out and "finite separation > 0" in out


@pytest.mark.parametrize("kwargs", [{"max_sep_arcsec": float("nan")}, {"max_sep_arcsec": -1.0},
                                    {"max_sep_arcsec": float("inf")}, {"max_dz": float("nan")},
                                    {"max_dz": -0.1}])  # fmt: skip
def test_crossmatch_job_refuses_meaningless_limits(kwargs: dict[str, float]) -> None:
    from services.jobs.ingest_catalogues import crossmatch_catalogues
    from survey.errors import CrossmatchError

    with pytest.raises(CrossmatchError, match="finite"):
        crossmatch_catalogues("a", "b", engine=sa.create_engine("postgresql://nobody@nowhere/x"),
                              **kwargs)  # fmt: skip
