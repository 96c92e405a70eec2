"""The embedded PostgreSQL: starts as root, answers SQL, survives stale client PIDs, stops."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from db import embedded


@pytest.fixture
def outside_basetemp() -> Iterator[Path]:
    """A fresh folder directly under the system temp dir, not under pytest's basetemp.

    As root the embedded server runs as the ``pgserver`` user and makes the folders above its
    data traversable; pytest resets ``/tmp/pytest-of-<user>`` to 0700 whenever another pytest
    session starts (a second suite or mutation testing on the same machine), which would lock
    the server out of its data mid-test.
    """
    path = Path(tempfile.mkdtemp(prefix="cm-embedded-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_embedded_server_lifecycle(outside_basetemp: Path) -> None:
    pgdata = outside_basetemp / "deep" / "pgdata"  # parents are created
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
