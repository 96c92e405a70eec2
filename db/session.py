"""Engines and sessions. The caller owns the transaction (``with session_scope(engine) as s``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseUnavailableError

__all__ = ["make_engine", "session_scope", "check_connection", "redact"]


def redact(url: str | sa.URL) -> str:
    """Return ``url`` with its password hidden (safe for logs and error messages)."""
    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(url: str, *, pool_pre_ping: bool = True, **kwargs: object) -> Engine:
    """Create an engine for ``url``.

    Raises
    ------
    DatabaseUnavailableError
        If the URL cannot be parsed or names a driver that is not installed.
    """
    try:
        return sa.create_engine(url, pool_pre_ping=pool_pre_ping, **kwargs)  # type: ignore[arg-type]
    except (ArgumentError, ImportError, ValueError) as exc:
        raise DatabaseUnavailableError(
            f"invalid database URL {redact(url)}: {exc}. Fix CLUSTERMASS_DATABASE_URL "
            "(e.g. postgresql://user@host:5432/dbname) or unset it to use the embedded server."
        ) from exc


def check_connection(engine: Engine) -> None:
    """Run ``SELECT 1``; raise :class:`DatabaseUnavailableError` with one clear line if it fails."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(
            f"cannot connect to {redact(engine.url)}: {reason}. Check that the server is running "
            "and CLUSTERMASS_DATABASE_URL is right, or unset it to use the embedded server."
        ) from exc


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session in a transaction: committed on success, rolled back on error."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
