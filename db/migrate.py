"""Run and check Alembic migrations programmatically."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from db.errors import SchemaOutOfDateError

__all__ = [
    "alembic_config",
    "upgrade",
    "downgrade",
    "head_revision",
    "current_revision",
    "check_schema",
    "url_from_environment",
]

# The Alembic scripts: the ``migrations`` package installed beside ``db`` (a path, not an import:
# migrations import db, never the other way round).
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
URL_ENV = "CLUSTERMASS_DATABASE_URL"


def url_from_environment() -> str:
    """Return the database URL for a bare ``alembic`` command (``CLUSTERMASS_DATABASE_URL``).

    Raises
    ------
    SchemaOutOfDateError
        The variable is not set (the embedded server is started by ``clustermass db upgrade``).
    """
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        raise SchemaOutOfDateError(
            f"alembic needs {URL_ENV} (or sqlalchemy.url); to migrate the embedded default "
            "database run `clustermass db upgrade`"
        )
    return url


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config pointing at the packaged migrations (and ``url`` if given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolation: escape '%' (URL-encoded passwords).
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at ``url`` to ``revision``."""
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """Return the head revision of the packaged migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the database is at the migration head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        where = "empty (no schema)" if current is None else f"at revision {current}"
        raise SchemaOutOfDateError(
            f"the database is {where} but this code needs revision {head}: run "
            "`clustermass db upgrade`"
        )
