"""Real services for integration and reliability tests: Redis broker, Celery worker processes.

Loaded as a pytest plugin by ``tests/conftest.py``.

The broker is ``CLUSTERMASS_TEST_BROKER_URL`` (default ``redis://127.0.0.1:6379/15``); the
database is the session's throwaway database. Workers are real ``clustermass worker``
subprocesses (not eager mode), started and killed by the tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _broker_url() -> str:
    return os.environ.get("CLUSTERMASS_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The Redis broker URL; the tests fail (not skip) when Redis does not answer."""
    import redis

    url = _broker_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis broker {url} does not answer ({exc}); start redis-server (see .ci/run)")
    return url


@pytest.fixture
def integration_db(admin_url: str) -> Iterator[str]:
    """A private migrated database: flows and workers commit, so counts must start at zero."""
    from db import migrate
    from tests.conftest import create_database, drop_database

    url = create_database(admin_url, "cmint")
    migrate.upgrade(url, "head")
    yield url
    drop_database(admin_url, url)


@pytest.fixture
def service_env(
    monkeypatch: pytest.MonkeyPatch, integration_db: str, broker_url: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """Environment shared by this process and its worker subprocesses."""
    import redis

    from services.celery_app import get_celery
    from services.settings import get_settings

    database_url = integration_db
    redis.Redis.from_url(broker_url).flushdb()
    env = {
        "CLUSTERMASS_DATABASE_URL": database_url,
        "CLUSTERMASS_BROKER_URL": broker_url,
        "CLUSTERMASS_RESULT_BACKEND": broker_url,
        "CLUSTERMASS_DATA_DIR": str(tmp_path / "data"),
        "CLUSTERMASS_VISIBILITY_TIMEOUT_S": "4",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    get_celery.cache_clear()
    yield env
    get_settings.cache_clear()
    get_celery.cache_clear()


@dataclass
class WorkerProcs:
    """Start and stop real worker subprocesses."""

    env: dict[str, str]
    logdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(
        self, queue: str = "cpu", name: str | None = None, *, pool: str = "solo"
    ) -> subprocess.Popen:
        """Start a worker (``pool='prefork'``: one child process runs the tasks)."""
        name = name or f"{queue}{len(self.procs)}"
        log = open(self.logdir / f"worker-{name}.log", "wb")  # noqa: SIM115 - closed with proc
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "worker",
                "--queue",
                queue,
                "--pool",
                pool,
                "--concurrency",
                "1",
                "--hostname",
                f"{name}@test",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        self._wait_ready(proc, name)
        return proc

    def _wait_ready(self, proc: subprocess.Popen, name: str, timeout: float = 60) -> None:
        logfile = self.logdir / f"worker-{name}.log"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {name} exited: {logfile.read_text()[-3000:]}")
            if b"ready." in logfile.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(
            f"worker {name} not ready after {timeout}s: {logfile.read_text()[-3000:]}"
        )

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker (and anything in its process group): no chance to ack or clean up."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def kill_pool_child(self, proc: subprocess.Popen) -> int:
        """SIGKILL the child process of a prefork worker (what the OOM killer does); return its pid.

        The worker's main process lives on and sees its child lost in the middle of a task.
        """
        import psutil

        children = psutil.Process(proc.pid).children()
        assert len(children) == 1, f"expected one pool process, found {children}"
        os.kill(children[0].pid, signal.SIGKILL)
        children[0].wait(timeout=10)
        return children[0].pid

    def log(self, name: str) -> str:
        return (self.logdir / f"worker-{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def workers(service_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcs]:
    wp = WorkerProcs(service_env, tmp_path)
    yield wp
    wp.stop_all()
