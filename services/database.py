"""Wire the settings to the database layer: which server, which engine, is the schema current."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db import embedded, migrate
from db.session import READER_ROLE, check_connection, make_engine, read_only_session
from services.settings import Settings, get_settings

__all__ = ["database_url", "get_engine", "ready_engine", "reader_session"]


def database_url(settings: Settings | None = None) -> str:
    """Return the configured database URL, starting the embedded server when none is set."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return embedded.start(settings.embedded_pg_dir)


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    """Return a (cached) engine for the configured database."""
    return _engine_for(database_url(settings))


def ready_engine(settings: Settings | None = None, *, engine: Engine | None = None) -> Engine:
    """Return an engine after checking the connection and that the schema is at head.

    A given ``engine`` (tests, callers that hold one) is returned as it is, unchecked.

    Raises
    ------
    db.errors.DatabaseUnavailableError
        The server cannot be reached or the URL is wrong.
    db.errors.SchemaOutOfDateError
        The schema is not at the migration head (run ``clustermass db upgrade``).
    """
    if engine is not None:
        return engine
    engine = get_engine(settings)
    check_connection(engine)
    migrate.check_schema(engine)
    return engine


@contextmanager
def reader_session(settings: Settings | None = None) -> Iterator[Session]:
    """Yield a read-only session: the reader URL, else the main URL as ``clustermass_reader``."""
    settings = settings or get_settings()
    url = settings.read_only_database_url or database_url(settings)
    engine = make_engine(url)
    try:
        check_connection(engine)
        migrate.check_schema(engine)
        role = None if settings.read_only_database_url else READER_ROLE
        with read_only_session(engine, assume_role=role) as session:
            yield session
    finally:
        engine.dispose()
