"""Flow runs launched from the CLI log at INFO to a real Prefect server (issue 16).

The CLI runs as an operator runs it (a subprocess, ``PREFECT_API_URL`` set to the test
harness's server): it prints the flow run's UI address, keeps the terminal quiet, and the flow
run's logs, read back from the server, hold INFO records from the flow, its tasks and the Celery
task body (eager: in-process; and on a real ``cpu`` worker, tied to the Prefect task run that
sent the task).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_environment

ROOT = Path(__file__).resolve().parents[2]
URL_RE = re.compile(
    r"Prefect flow run '[^']+' \(ingest-simulation\): (\S+/runs/flow-run/([0-9a-f-]{36}))"
)


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the Prefect test harness set no API URL"
    return url


def _cli(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    full.update(env)
    full.update(
        PREFECT_API_URL=_api_url(),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _flow_run_logs(flow_run_id: str, want: str, timeout: float = 30) -> list[Any]:
    """The flow run's logs on the server, once one whose logger name starts with ``want`` is in."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
            )
        if any(log.name.startswith(want) for log in logs) or time.monotonic() > deadline:
            return logs
        time.sleep(0.5)


def _the_url(result: subprocess.CompletedProcess) -> tuple[str, str]:
    assert result.returncode == 0, result.stdout + result.stderr
    match = URL_RE.search(result.stderr)
    assert match, f"no flow-run URL on stderr: {result.stderr[-2000:]}"
    return match.group(1), match.group(2)


@pytest.fixture
def cli_env(admin_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with service_environment(admin_url, tmp_path / "data", prefix="cmlogs") as url:
        yield {"CLUSTERMASS_DATABASE_URL": url, "CLUSTERMASS_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.db
def test_cli_flow_logs_at_info_to_prefect_and_prints_its_url(
    prefect_harness: None, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env
    result = _cli(
        ["simulate", "--n", "24", "--seed", "11", "--out", str(tmp_path / "m")], env, tmp_path
    )
    url, flow_run_id = _the_url(result)
    assert url.startswith(_api_url().removesuffix("/api"))
    # the terminal stays quiet: no INFO record (from Prefect or the project) without -v
    assert " INFO " not in result.stderr and "Beginning flow run" not in result.stderr

    logs = _flow_run_logs(flow_run_id, "services.jobs.simulation")
    by_name = {(log.name, log.level) for log in logs}
    assert ("prefect.flow_runs", 20) in by_name  # "Beginning flow run ..." at INFO
    body = [log for log in logs if log.name == "services.jobs.simulation"]
    assert any("ingested" in log.message and "24 clusters" in log.message for log in body), logs
    # the task body's record is filed under the Prefect task run that called it
    assert all(log.level == 20 and log.task_run_id is not None for log in body)


@pytest.mark.db
def test_verbose_shows_info_on_the_terminal(
    prefect_harness: None, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env
    args = ["-v", "simulate", "--n", "24", "--seed", "11", "--out", str(tmp_path / "m")]
    result = _cli(args, env, tmp_path)
    _the_url(result)
    assert "Beginning flow run" in result.stderr and "ingested" in result.stderr


@pytest.mark.db
@pytest.mark.integration
def test_celery_worker_logs_reach_the_flow_run_that_sent_the_task(
    prefect_harness: None, workers, service_env: dict[str, str], tmp_path: Path
) -> None:
    workers.env["PREFECT_API_URL"] = _api_url()
    workers.start("cpu", "cpu0", pool="prefork")  # the default pool: records from a child
    args = ["simulate", "--n", "24", "--seed", "11", "--out", str(tmp_path / "m")]
    url, flow_run_id = _the_url(_cli(args, service_env, tmp_path))
    assert "clustermass.ingest_simulation" in workers.log("cpu0")  # it ran on the worker

    logs = _flow_run_logs(flow_run_id, "services.jobs.simulation")
    body = [log for log in logs if log.name == "services.jobs.simulation"]
    assert any("ingested" in log.message and "24 clusters" in log.message for log in body), logs

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(body[-1].task_run_id)
    assert str(task_run.flow_run_id) == flow_run_id and task_run.name.startswith("ingest-mock")
