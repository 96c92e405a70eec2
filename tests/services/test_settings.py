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
