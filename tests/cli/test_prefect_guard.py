"""`kill -9` of the CLI does not leave Prefect's temporary API server running (issue 15).

A child process installs the guard (as the CLI's flow commands do), runs a flow against the
ephemeral API, prints the temporary server's pid and is then SIGKILLed: the server must be gone
within seconds. With ``guard=False`` the same scenario leaves the server running (the bug).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    if {guard}:
        from cli.prefect_guard import install
        install()
    from prefect import flow
    from prefect.server.api.server import SubprocessASGIServer

    @flow
    def ping() -> int:
        return 1

    ping()
    (server,) = [s for s in SubprocessASGIServer._instances.values() if s.server_process]
    print(server.server_process.pid, flush=True)
    time.sleep(300)
    """
)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie waits for its (new) parent to reap it: it is dead


def _kill_cli_and_watch(tmp_path: Path, guard: bool, wait_s: float) -> tuple[int, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), guard=guard)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip().isdigit(), "the child did not start a temporary server"
        server = int(line)
        assert not _gone(server)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not _gone(server):
            time.sleep(0.2)
        return server, _gone(server)
    finally:
        if child.poll() is None:
            child.kill()


def test_sigkilled_cli_takes_its_temporary_prefect_server_with_it(tmp_path: Path) -> None:
    server, gone = _kill_cli_and_watch(tmp_path, guard=True, wait_s=15)
    if not gone:
        os.kill(server, signal.SIGKILL)
    assert gone, f"temporary Prefect server {server} outlived the SIGKILLed CLI"


@pytest.mark.slow
def test_without_the_guard_the_server_outlives_the_cli(tmp_path: Path) -> None:
    """The bug the guard fixes, shown on the same scenario (and cleaned up)."""
    server, gone = _kill_cli_and_watch(tmp_path, guard=False, wait_s=3)
    if not gone:
        os.kill(server, signal.SIGKILL)
    assert not gone
