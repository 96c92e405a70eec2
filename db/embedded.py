"""The embedded PostgreSQL server used when no database URL is configured.

It is the ``pgserver`` package (PostgreSQL shipped in a wheel): the server listens on a Unix
socket inside its data directory, is shared by every clustermass process on the machine that
points at the same directory, and stops when the last of them exits. As root it runs the server
as a dedicated ``pgserver`` system user (PostgreSQL refuses to run as root).

pgserver records the PIDs of client processes in ``<pgdata>/.handle_pids.json`` and stops the
server when the list empties; a client killed with SIGKILL is never pruned, so :func:`start`
sweeps dead PIDs first and :func:`stop` stops the server whatever the list says.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from pathlib import Path

import psutil

from db.errors import EmbeddedServerError

__all__ = ["start", "stop", "status", "DATABASE_NAME"]

log = logging.getLogger(__name__)

DATABASE_NAME = "clustermass"


def _sweep_stale_pids(pgdata: Path) -> None:
    """Drop PIDs of dead processes from pgserver's handle list."""
    handle = pgdata / ".handle_pids.json"
    if not handle.exists():
        return
    try:
        pids = json.loads(handle.read_text() or "[]")
    except (json.JSONDecodeError, OSError):
        pids = []
    alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
    if alive != pids:
        log.info(
            "embedded PostgreSQL: dropping stale client PIDs %s", sorted(set(pids) - set(alive))
        )
        handle.write_text(json.dumps(alive))


def start(pgdata: Path) -> str:
    """Start (or join) the embedded server in ``pgdata``; return a SQLAlchemy URL.

    The ``clustermass`` database is created on first use.

    Parameters
    ----------
    pgdata : Path
        Data directory of the server; its parent folders are created.

    Returns
    -------
    str
        A ``postgresql://`` URL with the socket directory as ``host``.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (normal on servers and in CI).
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:  # pragma: no cover - a dependency
        raise EmbeddedServerError(
            "the embedded PostgreSQL needs the 'pgserver' package: pip install pgserver, or set "
            "CLUSTERMASS_DATABASE_URL to use a server"
        ) from exc
    pgdata = Path(pgdata).expanduser().resolve()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if pgdata.exists():
            _sweep_stale_pids(pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except (OSError, subprocess.SubprocessError, AssertionError) as exc:
        logfile = pgdata / "log"
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {pgdata} ({exc}); see {logfile}, or set "
            "CLUSTERMASS_DATABASE_URL to use another server"
        ) from exc
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    uri = server.get_uri(database=DATABASE_NAME)
    return uri


def status(pgdata: Path) -> dict[str, object]:
    """Describe the embedded server in ``pgdata`` without starting it."""
    pgdata = Path(pgdata).expanduser().resolve()
    info: dict[str, object] = {
        "pgdata": str(pgdata),
        "initialised": (pgdata / "PG_VERSION").exists(),
    }
    pidfile = pgdata / "postmaster.pid"
    running = False
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            running = psutil.pid_exists(pid)
            info["pid"] = pid
        except (ValueError, IndexError, OSError):
            pass
    info["running"] = running
    return info


def stop(pgdata: Path) -> bool:
    """Stop the embedded server in ``pgdata`` if it runs; return whether it was running."""
    pgdata = Path(pgdata).expanduser().resolve()
    if not status(pgdata)["running"]:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH

    cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"]
    if os.geteuid() == 0:
        cmd = ["su", "-s", "/bin/sh", "pgserver", "-c", " ".join(cmd)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedServerError(
            f"could not stop the embedded PostgreSQL in {pgdata}: {exc}"
        ) from exc
    handle = pgdata / ".handle_pids.json"
    if handle.exists():
        handle.write_text("[]")
    return True
