"""Shared fixtures: a throwaway PostgreSQL database per test session, seeding, GPU skipping.

The database server is, in order: ``CLUSTERMASS_TEST_DATABASE_URL`` (an admin URL on a server
where databases can be created), the PostgreSQL on 127.0.0.1:5432 when it answers, else the
project's embedded server in a temporary directory. Tests never skip for lack of a database.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

pytest_plugins = ["tests.services_fixtures"]

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a server (maintenance database) on which test databases are created."""
    url = os.environ.get("CLUSTERMASS_TEST_DATABASE_URL")
    if url:
        return url
    if _answers(LOCAL_ADMIN_URL):
        return LOCAL_ADMIN_URL
    from db import embedded

    return embedded.start(tmp_path_factory.mktemp("pg") / "pgdata")


def create_database(admin_url: str, prefix: str = "cmtest") -> str:
    """Create an empty, uniquely named database; return its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database of ``url`` (terminating its connections)."""
    name = make_url(url).database
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def service_environment(
    admin_url: str, data_dir: Path, *, prefix: str, migrated: bool = True
) -> Iterator[str]:
    """A private database plus ``CLUSTERMASS_*`` settings pointing at it (Celery eager).

    For tests whose code commits (flows, jobs, the CLI): they get their own database, so row
    counts start at zero. Every cached settings object, engine and Celery app is rebuilt.
    """
    from db import migrate
    from services.celery_app import get_celery
    from services.database import _engine_for
    from services.settings import get_settings

    url = create_database(admin_url, prefix)
    caches = (get_settings, get_celery, _engine_for)
    try:
        if migrated:
            migrate.upgrade(url, "head")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CLUSTERMASS_DATABASE_URL", url)
            mp.setenv("CLUSTERMASS_DATA_DIR", str(data_dir))
            mp.delenv("CLUSTERMASS_BROKER_URL", raising=False)
            for cache in caches:
                cache.cache_clear()
            yield url
    finally:
        for cache in caches:
            cache.cache_clear()
        drop_database(admin_url, url)


@pytest.fixture
def empty_database(admin_url: str) -> Iterator[str]:
    """A fresh empty database (no schema) for one test."""
    url = create_database(admin_url, "cmempty")
    yield url
    drop_database(admin_url, url)


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    """A throwaway database at the migration head, shared by the test session."""
    from db import migrate

    url = create_database(admin_url)
    migrate.upgrade(url, "head")
    yield url
    drop_database(admin_url, url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = sa.create_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back at the end of the test (savepoints for commits)."""
    with engine.connect() as conn:
        trans = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            yield s
        trans.rollback()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Path:
    """Point the service settings at the test database and a temporary data directory."""
    from services.settings import get_settings

    data_dir = tmp_path / "data"
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", database_url)
    monkeypatch.setenv("CLUSTERMASS_DATA_DIR", str(data_dir))
    monkeypatch.delenv("CLUSTERMASS_BROKER_URL", raising=False)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's test harness (a temporary API and database), shared by the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    # the default 30 s start-up timeout is too short on a loaded 2-core machine
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed python and numpy (and torch when imported) for every test."""
    random.seed(1)
    np.random.seed(1)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(1)


def _gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _gpu_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
