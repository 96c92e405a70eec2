"""The clustermass_reader role reads the results views and functions, and nothing else.

Roles are cluster-wide: these tests also check that migrating another database while the role
exists works, and that downgrading one database leaves the role usable in the others.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from db import migrate, results
from tests.results_data import Seeded, seeded_database

READER = "clustermass_reader"


def as_reader(url: str) -> str:
    return make_url(url).set(username=READER, password=None).render_as_string(False)


@pytest.fixture(scope="module")
def results_db(admin_url: str) -> Iterator[tuple[str, Seeded]]:
    with seeded_database(admin_url, "cmreader") as db:
        yield db


@pytest.fixture
def reader(results_db: tuple[str, Seeded]) -> Iterator[sa.Connection]:
    engine = sa.create_engine(as_reader(results_db[0]))
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_role_is_a_passwordless_login_role_read_only_by_default(reader: sa.Connection) -> None:
    assert reader.scalar(sa.text("SELECT current_user")) == READER
    assert reader.scalar(sa.text("SHOW default_transaction_read_only")) == "on"
    row = reader.execute(
        sa.text(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
            "WHERE rolname = :r"
        ),
        {"r": READER},
    ).one()
    assert tuple(row) == (True, False, False, False)


def test_reader_reads_results(reader: sa.Connection, results_db: tuple[str, Seeded]) -> None:
    data = results_db[1]
    run_id = data.run_ids["multi"]
    n = reader.scalar(sa.text("SELECT count(*) FROM v_residuals WHERE run_id = :r"), {"r": run_id})
    assert n > 100
    for fn in ("scatter_by_mass", "scatter_by_z", "scatter_by_mass_z"):
        rows = reader.execute(sa.text(f"SELECT * FROM {fn}(:r)"), {"r": run_id}).all()
        assert sum(r.n for r in rows) > 100
    for view in (
        "v_runs",
        "v_clusters",
        "v_observables",
        "v_attributions",
        "v_scatter_summary",
        "v_proxy_residuals",
        "v_scatter_bootstrap",
        "v_mass_catalogue",
        "v_mass_estimates",
        "v_physical_clusters",
        "v_cluster_names",
        "v_match_sets",
        "v_cluster_matches",
        # ingest provenance, readable since 0007 (issue 17)
        "match_sets",
        "cluster_matches",
        "ingest_files",
        "ingest_rejects",
    ):
        reader.execute(sa.text(f"SELECT * FROM {view} LIMIT 1")).all()
    with Session(bind=reader) as session:  # the library works through the role
        stats = results.scatter(session, run_id=run_id, by="mass")
        assert sum(s.n for s in stats) > 100


def test_reader_reads_through_the_scatter_index(
    reader: sa.Connection, results_db: tuple[str, Seeded]
) -> None:
    """With a run's scatter index built (revision 0011), the reader's answers are the plain
    query's: the index tables are readable, the functions need no other right."""
    url, data = results_db
    run_id = data.run_ids["single"]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        built = conn.scalar(sa.text("SELECT results_build_index(:r, 16, 0.002, 0)"), {"r": run_id})
    engine.dispose()
    assert built is True
    for fn in ("scatter_by_mass", "scatter_by_z"):
        got = reader.execute(sa.text(f"SELECT * FROM {fn}(:r)"), {"r": run_id}).all()
        ref = reader.execute(sa.text(f"SELECT * FROM {fn}_exact(:r)"), {"r": run_id}).all()
        assert [r[:4] + r[6:] for r in got] == [r[:4] + r[6:] for r in ref]
        assert [r.bias_dex for r in got] == pytest.approx([r.bias_dex for r in ref], abs=1e-14)
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        reader.execute(sa.text("SELECT results_build_index(:r)"), {"r": run_id})


def test_reader_holds_no_execute_privilege_on_refresh_results(reader: sa.Connection) -> None:
    # Functions are executable by PUBLIC by default; refresh_results() rebuilds the summary
    # (a write), so the migration revokes that and grants the reader only the read functions.
    def can_execute(signature: str) -> bool:
        return reader.scalar(
            sa.text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"),
            {"r": READER, "f": signature},
        )

    assert can_execute("refresh_results()") is False
    f8a = "double precision[]"
    for signature in (  # revision 0010's signatures (catalogue_id last)
        f"scatter_by_mass(integer, {f8a}, text, integer)",
        f"scatter_by_z(integer, {f8a}, text, integer)",
        f"scatter_by_mass_z(integer, {f8a}, {f8a}, text, integer)",
    ):
        assert can_execute(signature) is True


@pytest.mark.parametrize(
    "table",
    [
        "predictions",
        "clusters",
        "model_runs",
        "observables",
        "scatter_bootstrap",
        "proxy_estimates",
        "mass_estimates",
        "cluster_names",
    ],
)
def test_reader_cannot_read_base_tables(reader: sa.Connection, table: str) -> None:
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        reader.execute(sa.text(f"SELECT * FROM {table} LIMIT 1"))


WRITES = [
    "INSERT INTO catalogues (name, kind, cosmology) VALUES ('evil', 'survey', '{}')",
    "UPDATE clusters SET log10_m500c = 0",
    "DELETE FROM predictions",
    "TRUNCATE predictions",
    "INSERT INTO scatter_bootstrap (run_id, input_domain, axis, bin_lo, bin_hi, n, ci_level, "
    "n_resamples, seed) VALUES (1, 'mock', 'all', 0, 1, 0, 0.68, 1, 0)",
    "UPDATE v_observables SET value = 0",
    "DELETE FROM v_runs",
    "DELETE FROM cluster_matches",
    "INSERT INTO match_sets (name, catalogue_id_a, catalogue_id_b, params, params_key) "
    "VALUES ('x', 1, 2, '{}', 'k')",
    "UPDATE ingest_rejects SET reason = ''",
    "SELECT refresh_results()",
    "REFRESH MATERIALIZED VIEW v_scatter_summary",
    "CREATE TABLE evil (x int)",
    "DROP VIEW v_residuals",
    "CREATE OR REPLACE FUNCTION scatter_by_mass(run_id integer) RETURNS int LANGUAGE sql AS "
    "'SELECT 1'",
]


@pytest.mark.parametrize("statement", WRITES)
def test_reader_cannot_write_even_in_a_read_write_transaction(
    reader: sa.Connection, results_db: tuple[str, Seeded], statement: str
) -> None:
    # The role's read-only default is a convenience a session can switch off; privileges are
    # what forbid writes, so test with it switched off.
    reader.execute(sa.text("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"))
    reader.commit()
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied|must be owner"):
        reader.execute(sa.text(statement))
    reader.rollback()
    owner = sa.create_engine(results_db[0])
    with owner.connect() as conn:
        n = conn.scalar(sa.text("SELECT count(*) FROM predictions"))
        assert n == 3 * (len(results_db[1].cluster_ids) + 3) + 2
        assert conn.scalar(sa.text("SELECT to_regclass('evil')")) is None
    owner.dispose()


def test_migrations_coexist_with_the_cluster_wide_role(
    results_db: tuple[str, Seeded], empty_database: str
) -> None:
    # The role exists already (created by the first database): upgrading another works...
    migrate.upgrade(empty_database, "head")
    engine = sa.create_engine(as_reader(empty_database))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM scatter_by_mass(1)")).all()[0].n == 0
    engine.dispose()
    # ...and downgrading it keeps the role for the databases that still use it.
    migrate.downgrade(empty_database, "0001")
    engine = sa.create_engine(as_reader(results_db[0]))
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM v_residuals")) > 0
    engine.dispose()
    engine = sa.create_engine(as_reader(empty_database))
    with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError):
        conn.execute(sa.text("SELECT * FROM v_residuals"))
    engine.dispose()


def _read_write(reader: sa.Connection) -> None:
    # What an attacker does first: switch the role's read-only default off.
    reader.execute(sa.text("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"))
    reader.execute(sa.text("SET default_transaction_read_only = off"))
    reader.commit()


def test_reader_cannot_create_large_objects(
    reader: sa.Connection, results_db: tuple[str, Seeded]
) -> None:
    _read_write(reader)
    for statement in (
        "SELECT lo_from_bytea(0, decode(repeat('ab', 1048576), 'hex'))",  # 1 MB, persistent
        "SELECT lo_create(0)",
        "SELECT lo_creat(-1)",
    ):
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied for function lo_"):
            reader.execute(sa.text(statement))
        reader.rollback()
    owner = sa.create_engine(results_db[0])
    with owner.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM pg_largeobject_metadata")) == 0
    owner.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TEMP TABLE evil (x int)",
        "CREATE TEMP VIEW evil AS SELECT 1",
        "CREATE FUNCTION pg_temp.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_reader_cannot_create_temporary_tables_or_functions(
    reader: sa.Connection, statement: str
) -> None:
    _read_write(reader)
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        reader.execute(sa.text(statement))
    reader.rollback()


def test_database_connect_is_by_grant_only(results_db: tuple[str, Seeded], admin_url: str) -> None:
    # CONNECT on a clustermass database is revoked from PUBLIC and granted to the reader: a
    # role of the server with no grant cannot connect; the reader still can. (Other databases
    # of the server are the server's choice: docs/sql.md.)
    url = results_db[0]
    stranger = f"cm_stranger_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {stranger} LOGIN"))
    try:
        engine = sa.create_engine(make_url(url).set(username=stranger, password=None))
        with pytest.raises(sa.exc.OperationalError, match="permission denied for database"):
            engine.connect().close()
        engine.dispose()
        engine = sa.create_engine(as_reader(url))
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT current_user")) == READER
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE {stranger}"))
        admin.dispose()
