"""Throwaway benchmark databases on a PostgreSQL server (as ``tests/conftest.py`` makes them).

Shared by ``bench_scatter_query.py`` and ``bench_ingest.py``: create a uniquely named database on
the server of an admin URL, migrate it, drop it afterwards (``WITH (FORCE)``), and ``COPY``
numpy columns into a table with psycopg2. SQLAlchemy is imported inside the functions: the GPU
benchmarks (``--device cuda --only train,inference``) run on hosts without the database stack.
"""

from __future__ import annotations

import io
import os
import time
import uuid

import numpy as np

__all__ = [
    "LOCAL_ADMIN_URL",
    "default_admin_url",
    "dsn",
    "create_database",
    "drop_database",
    "copy_columns",
    "server_description",
]

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Server settings worth knowing when reading database timings.
SETTINGS = ("shared_buffers", "work_mem", "jit", "max_parallel_workers_per_gather")


def default_admin_url() -> str:
    """``CLUSTERMASS_TEST_DATABASE_URL`` when set (as the tests), else the local server."""
    return os.environ.get("CLUSTERMASS_TEST_DATABASE_URL") or LOCAL_ADMIN_URL


def dsn(url: str) -> str:
    """A libpq connection string (for psycopg2) from a SQLAlchemy URL of any driver."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin_url: str, prefix: str = "cmbench") -> str:
    """Create an empty, uniquely named database on the server of ``admin_url``; return its URL."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{os.getpid()}_{int(time.time())}_{uuid.uuid4().hex[:6]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database of ``url`` (terminating its connections)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            name = make_url(url).database
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def copy_columns(
    cur,  # noqa: ANN001 - a psycopg2 cursor
    table: str,
    columns: list[str],
    arrays: list[np.ndarray],
    fmt: str,
) -> None:
    """``COPY table (columns) FROM STDIN`` of numpy columns formatted with ``fmt`` (tab-separated)."""
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack(arrays), fmt=fmt, delimiter="\t")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def server_description(url: str) -> dict[str, object]:
    """``version()`` and a few settings of the server of ``url``; ``{"error": ...}`` if it fails."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            out: dict[str, object] = {"version": conn.scalar(sa.text("SELECT version()"))}
            out["settings"] = {s: conn.scalar(sa.text(f"SHOW {s}")) for s in SETTINGS}
            return out
    except sa.exc.SQLAlchemyError as exc:
        return {"error": str(exc).splitlines()[0]}
    finally:
        engine.dispose()
