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


def test_ingest_identity_upgrade_keeps_provenance_and_downgrade_keeps_newest(
    empty_database: str,
) -> None:
    url = empty_database
    migrate.upgrade(url, "0003_reader_lockdown")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cat = conn.scalar(
                sa.text(
                    "INSERT INTO catalogues (name, kind, cosmology) "
                    "VALUES ('mcxc', 'survey', '{}') RETURNING id"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ingest_files (sha256, path, kind, size_bytes, status, "
                    "catalogue_id) VALUES (:s, 'a.fits', 'catalogue', 1, 'ingested', :c)"
                ),
                {"s": "a" * 64, "c": cat},
            )
        migrate.upgrade(url, "0004_ingest_identity")
        with engine.begin() as conn:
            row = conn.execute(sa.text("SELECT ingest_key, target FROM ingest_files")).one()
            assert tuple(row) == ("a" * 64, "catalogue:mcxc")  # the old key: its file checksum
            conn.execute(
                sa.text(
                    "INSERT INTO ingest_files (ingest_key, sha256, path, kind, size_bytes, "
                    "status) VALUES (:k, :s, 'a.fits', 'catalogue', 1, 'ingested')"
                ),
                {"k": "b" * 64, "s": "a" * 64},
            )
        migrate.downgrade(url, "0003_reader_lockdown")
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM ingest_files")) == 1
    finally:
        engine.dispose()
