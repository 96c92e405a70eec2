"""Database URLs never reach a message with their password, whatever their shape (issue 15)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from db.errors import DatabaseUnavailableError
from db.session import check_connection, make_engine, redact

SECRET = "S3cr3tPW"
URLS = [
    f"mysql://user:{SECRET}@localhost/db",  # wrong dialect, driver not installed
    f"mysql//user:{SECRET}@localhost/db",  # unparseable
    f"user:{SECRET}@localhost",  # no scheme at all
    f"postgresql://user:{SECRET}@[::1/db",  # unparseable port
    f"postgresql+psycopg://user:{SECRET}@localhost:notaport/db",
    f"postgresql://user:{SECRET}@127.0.0.1:1/db",  # nothing listens
    f"postgresql://127.0.0.1:1/db?password={SECRET}",  # password as a query parameter
    f"postgresql://u:{SECRET}@127.0.0.1:1/db?sslpassword={SECRET}",
    f"postgresql://user:{SECRET[:3]}@{SECRET[3:]}@127.0.0.1:1/db",  # unencoded '@'
    f"postgresql://user:{SECRET}@127.0.0.1:5432/db?sslmode=bogus",  # driver error
]


def _pieces_absent(text: str) -> bool:
    return SECRET not in text and SECRET[3:] not in text


@pytest.mark.parametrize("url", URLS)
def test_redact_and_engine_errors_hide_the_password(url: str) -> None:
    assert _pieces_absent(redact(url))
    with pytest.raises(DatabaseUnavailableError) as info:
        check_connection(make_engine(url))
    msg = str(info.value)
    assert _pieces_absent(msg), msg
    assert info.value.__cause__ is None  # no chained exception quoting the URL


@pytest.mark.parametrize("url", URLS)
def test_cli_database_errors_hide_the_password(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.settings import get_settings

    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert _pieces_absent(result.output), result.output
