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


def test_mass_catalogue_upgrade_moves_matches_into_sets_and_names_clusters(
    empty_database: str,
) -> None:
    url = empty_database
    migrate.upgrade(url, "0005")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cats = [
                conn.scalar(
                    sa.text(
                        "INSERT INTO catalogues (name, kind, cosmology) "
                        "VALUES (:n, 'survey', '{}') RETURNING id"
                    ),
                    {"n": n},
                )
                for n in ("mcxc", "codex")
            ]
            ids = [
                conn.scalar(
                    sa.text(
                        "INSERT INTO clusters (catalogue_id, external_id, name, redshift) "
                        "VALUES (:c, :e, :n, 0.1) RETURNING id"
                    ),
                    {"c": c, "e": e, "n": n},
                )
                for c, e, n in ((cats[0], "J1259+2757", "Abell 1656"), (cats[1], "C1", None))
            ]
            for method in ("sep<=180", "sep<=60"):  # before 0007 a pair is stored once
                conn.execute(
                    sa.text(
                        "INSERT INTO cluster_matches (cluster_id_a, cluster_id_b, "
                        "separation_arcsec, delta_z, method) VALUES (:a, :b, 10, 0, :m)"
                        + (" ON CONFLICT DO NOTHING" if method == "sep<=60" else "")
                    ),
                    {"a": ids[0], "b": ids[1], "m": method},
                )
            conn.execute(
                sa.text(
                    "INSERT INTO observables (cluster_id, name, value, unit) "
                    "VALUES (:c, 'log10_M500c_dyn', 14.5, 'dex(solMass)')"
                ),
                {"c": ids[0]},
            )
        migrate.upgrade(url, "0007_mass_catalogue")
        with engine.begin() as conn:
            # a dynamical mass in h^-1 Msun says so in its unit
            unit = conn.scalar(sa.text("SELECT unit FROM observables"))
            assert unit == "dex(solMass / littleh)"
            sets = conn.execute(
                sa.text("SELECT catalogue_id_a, catalogue_id_b, method, n_matches FROM match_sets")
            ).all()
            assert [tuple(s) for s in sets] == [(cats[0], cats[1], "sep<=180", 1)]
            assert (
                conn.scalar(sa.text("SELECT count(*) FROM v_cluster_matches WHERE is_latest")) == 1
            )
            keys = conn.execute(
                sa.text("SELECT cluster_id, name_key FROM cluster_names ORDER BY 1, 2")
            ).all()
            assert [tuple(k) for k in keys] == [
                (ids[0], "a1656"),
                (ids[0], "j1259+2757"),
                (ids[1], "c1"),
            ]
            assert (
                conn.scalar(
                    sa.text("SELECT physical_id FROM v_physical_clusters WHERE cluster_id = :c"),
                    {"c": ids[1]},
                )
                == ids[0]
            )
            # a second set of the same pair: the downgrade keeps one row per pair
            sid = conn.scalar(
                sa.text(
                    "INSERT INTO match_sets (name, catalogue_id_a, catalogue_id_b, params, "
                    "params_key, method) VALUES ('x', :a, :b, '{}', 'k', 'new') RETURNING id"
                ),
                {"a": cats[0], "b": cats[1]},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO cluster_matches (match_set_id, cluster_id_a, cluster_id_b, "
                    "separation_arcsec, delta_z, method) VALUES (:s, :a, :b, 5, 0, 'new')"
                ),
                {"s": sid, "a": ids[0], "b": ids[1]},
            )
        migrate.downgrade(url, "0005")
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT method FROM cluster_matches")).all()
            assert [r[0] for r in rows] == ["new"]
    finally:
        engine.dispose()
