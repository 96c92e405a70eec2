"""Migrations reproduce the ORM exactly, and can be undone and redone."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from db import migrate, tables


def _diff(url: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, tables.Base.metadata)
    finally:
        engine.dispose()


def _table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_head_matches_orm_exactly(empty_database: str) -> None:
    migrate.upgrade(empty_database, "head")
    assert _diff(empty_database) == []
    assert _table_names(empty_database) == set(tables.Base.metadata.tables)


def test_downgrade_base_then_upgrade_again(empty_database: str) -> None:
    migrate.upgrade(empty_database, "head")
    migrate.downgrade(empty_database, "base")
    assert _table_names(empty_database) == set()
    migrate.upgrade(empty_database, "head")
    assert _diff(empty_database) == []


def test_single_head() -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert len(heads) == 1, f"migration history has several heads: {heads}"
