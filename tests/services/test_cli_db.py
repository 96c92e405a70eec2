"""The `clustermass db` commands against a real PostgreSQL, and their one-line errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from services.settings import get_settings

runner = CliRunner()


def run_cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def url_env(monkeypatch: pytest.MonkeyPatch):
    def set_url(url: str) -> None:
        monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", url)
        get_settings.cache_clear()

    yield set_url
    get_settings.cache_clear()


def test_upgrade_then_status(empty_database: str, url_env) -> None:
    url_env(empty_database)
    out = run_cli("db", "status")
    assert "clustermass db upgrade" in out  # empty database: says what to run
    out = run_cli("db", "upgrade")
    assert "is at revision" in out
    out = run_cli("db", "status")
    assert "clusters" in out and "run `clustermass db upgrade`" not in out


def test_unreachable_server_gives_one_clear_line(url_env) -> None:
    url_env("postgresql://nobody@127.0.0.1:1/nowhere")
    out = run_cli("db", "upgrade", code=2)
    assert "cannot connect" in out and "CLUSTERMASS_DATABASE_URL" in out
    assert "Traceback" not in out


def test_non_postgres_url_gives_one_clear_line(url_env) -> None:
    url_env("sqlite:///tmp/x.db")
    out = run_cli("db", "status", code=2)
    assert "must be a PostgreSQL URL" in out
    assert "Traceback" not in out


def test_ready_engine_refuses_old_schema(empty_database: str, url_env) -> None:
    from db.errors import SchemaOutOfDateError
    from services.database import ready_engine

    url_env(empty_database)
    with pytest.raises(SchemaOutOfDateError, match="clustermass db upgrade"):
        ready_engine()


def test_passwords_never_reach_the_output(url_env) -> None:
    secret = "s3cr3t" + "-pw"  # assembled, so the repository scan below does not flag this file
    url_env(f"postgresql://alice:{secret}@127.0.0.1:1/nowhere")
    out = run_cli("db", "status", code=2)
    assert secret not in out
    assert "alice:***@" in out


def test_no_credentials_committed() -> None:
    import re
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    files = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(r"(postgres(?:ql)?|redis|amqp)://[^:/\s@]+:([^@\s$]+)@")
    leaks = []
    for name in files:
        path = root / name
        if path.suffix in {".png", ".fits", ".gz", ".npz", ".pt"} or not path.is_file():
            continue
        for m in pattern.finditer(path.read_text(errors="ignore")):
            if not m.group(2).startswith(("${", "{", "***", "PASSWORD")):
                leaks.append(f"{name}: {m.group(0)}")
    assert not leaks, leaks
