"""The embedded PostgreSQL: starts as root, answers SQL, survives stale client PIDs, stops."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from db import embedded


def test_embedded_server_lifecycle(tmp_path: Path) -> None:
    pgdata = tmp_path / "deep" / "pgdata"  # parents are created
    url = embedded.start(pgdata)
    assert "clustermass" in url
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT current_database()")) == "clustermass"
    engine.dispose()
    assert embedded.status(pgdata)["running"]

    # A client killed with SIGKILL leaves its PID behind: start() prunes it.
    handle = pgdata / ".handle_pids.json"
    pids = json.loads(handle.read_text())
    handle.write_text(json.dumps(pids + [2**22 + 12345]))
    embedded._sweep_stale_pids(pgdata)
    assert 2**22 + 12345 not in json.loads(handle.read_text())

    assert embedded.stop(pgdata) is True
    assert not embedded.status(pgdata)["running"]
    assert embedded.stop(pgdata) is False
