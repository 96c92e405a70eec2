"""Alembic environment: URL from the caller (or ``CLUSTERMASS_DATABASE_URL``), metadata from ``db.tables``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from db import tables
from db.migrate import url_from_environment

config = context.config
target_metadata = tables.Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return url_from_environment()


def _include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    # Views created by migrations (results SQL) are not ORM tables: don't diff them.
    return not (type_ == "table" and reflected and compare_to is None and name.startswith("v_"))


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    from sqlalchemy import create_engine

    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
