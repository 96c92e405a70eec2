"""End Prefect's temporary API server with the CLI process that started it, even on ``kill -9``.

Without a configured ``PREFECT_API_URL``, Prefect 3 runs flows against a temporary API server
(uvicorn, ~190 MB) that it starts in a subprocess and stops from an ``atexit`` handler; a CLI
killed with SIGKILL never runs that handler and leaves the server behind (issue 15). A
``PR_SET_PDEATHSIG`` in the child is not enough: Linux sends it when the *thread* that forked
the child exits, and Prefect may start the server from a worker thread.

So, right after Prefect starts the server, a small watchdog process is spawned that polls the CLI
process (by pid and start time, so a recycled pid is not mistaken for it) and terminates the
server as soon as the CLI is gone. The watchdog exits when either process is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

__all__ = ["install", "process_start_time", "WATCHDOG"]

#: The watchdog program: argv = parent pid, parent start time, server pid.
WATCHDOG = r"""
import os, signal, sys, time

def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

parent, parent_start, server = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
while True:
    if not alive(server):
        sys.exit(0)
    if start_time(parent) != parent_start:
        try:
            os.kill(server, signal.SIGTERM)
            for _ in range(50):
                time.sleep(0.1)
                if not alive(server):
                    sys.exit(0)
            os.kill(server, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sys.exit(0)
    time.sleep(0.5)
"""


def process_start_time(pid: int) -> str | None:
    """Return a process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def _watch(server_pid: int) -> subprocess.Popen[bytes] | None:
    me = os.getpid()
    started = process_start_time(me)
    if started is None:  # no /proc (not Linux): Prefect's own atexit handler is all we have
        return None
    return subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(me), started, str(server_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C in the terminal must not kill the watchdog first
        close_fds=True,
    )


def install() -> None:
    """Make every temporary Prefect server this process starts die with it (idempotent)."""
    from prefect.server.api import server as prefect_server

    cls = prefect_server.SubprocessASGIServer
    if getattr(cls.start, "_clustermass_guarded", False):
        return
    original = cls.start

    def start(self: Any, timeout: int | None = None) -> None:
        was_running = self.running
        original(self, timeout)
        proc = getattr(self, "server_process", None)
        if not was_running and proc is not None and proc.poll() is None:
            self._clustermass_watchdog = _watch(proc.pid)

    start._clustermass_guarded = True  # type: ignore[attr-defined]
    cls.start = start  # type: ignore[method-assign]
