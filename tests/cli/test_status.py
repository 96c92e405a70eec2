"""``clustermass status``: catalogues, runs, queues, workers, Prefect API (issue 16).

Against a private database holding two catalogues and two runs; with no broker (tasks run
in-process), a broker that does not answer, and a real Redis broker with a ``cpu`` worker and
tasks waiting on the ``gpu`` queue that no worker consumes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db import tables
from tests.conftest import service_environment

pytestmark = pytest.mark.db


def _seed(url: str) -> None:
    engine = sa.create_engine(url)
    with Session(engine) as s, s.begin():
        sim = tables.Catalogue(name="mock-a", kind="simulation", cosmology={})
        survey = tables.Catalogue(name="efeds-x", kind="survey", cosmology={})
        s.add_all([sim, survey])
        s.flush()
        s.add_all(
            tables.Cluster(catalogue_id=sim.id, external_id=f"c{i}", redshift=0.1, snapshot=0)
            for i in range(3)
        )
        for key, status, done in (("r1", "done", 2), ("r2", "running", 1)):
            run = tables.ModelRun(
                run_key=key, kind="single", catalogue_id=sim.id, config={}, seed=1,
                fold_scheme="octant", status=status,
            )  # fmt: skip
            s.add(run)
            s.flush()
            s.add_all(
                tables.ModelRunFold(run_id=run.id, fold=f, status="done" if f < done else "pending")
                for f in range(2)
            )
    engine.dispose()


@pytest.fixture
def status_db(admin_url: str, tmp_path: Path) -> Iterator[str]:
    with service_environment(admin_url, tmp_path / "data", prefix="cmstatus") as url:
        _seed(url)
        yield url


def _status(*args: str) -> str:
    from cli.main import app

    result = CliRunner().invoke(app, ["status", *args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def _row(out: str, *cells: str) -> bool:
    """Whether one line of ``out`` holds ``cells`` in this order (a table row)."""
    pattern = r".*".join(re.escape(c) for c in cells)
    return any(re.search(pattern, line) for line in out.splitlines())


def test_status_without_a_broker_lists_data_and_runs(status_db: str) -> None:
    from prefect.settings import get_current_settings

    out = _status()
    assert _row(out, "mock-a", "simulation", "3") and _row(out, "efeds-x", "survey", "0")
    assert _row(out, "2", "single", "mock-a", "running", "1/2")
    assert _row(out, "1", "single", "mock-a", "done", "2/2")
    assert "Celery tasks run in-process" in out
    api = get_current_settings().api.url
    assert _row(out, "Prefect API", api) if api else "Prefect API : none" in out


def test_status_with_a_broker_that_does_not_answer(
    status_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.celery_app import get_celery
    from services.settings import get_settings

    monkeypatch.setenv("CLUSTERMASS_BROKER_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    get_celery.cache_clear()
    try:
        out = _status()
    finally:
        get_settings.cache_clear()
        get_celery.cache_clear()
    assert "broker unavailable" in out and "redis://127.0.0.1:1/0" in out
    assert _row(out, "mock-a", "simulation", "3")  # the database part is still shown


@pytest.mark.integration
def test_status_shows_queue_depths_and_live_workers(workers, service_env: dict[str, str]) -> None:
    import redis

    from services.celery_app import get_celery

    broker = redis.Redis.from_url(service_env["CLUSTERMASS_BROKER_URL"])
    broker.delete("gpu")  # a queue of known depth
    workers.start("cpu", "cpu0")
    app = get_celery()
    try:
        for fold in range(2):  # no gpu worker: these wait in the gpu queue
            app.tasks["clustermass.train_fold"].apply_async(args=(999, fold))
        out = _status("--timeout", "5")
    finally:
        broker.delete("gpu")  # never leave tasks of a run that does not exist to later tests
    assert _row(out, "gpu", "2", "0") and _row(out, "cpu", "0", "1")
    assert _row(out, "cpu0@test", "cpu", "cpu", "0/1")
    assert "no worker on queue gpu" in out


def test_worker_devices() -> None:
    from services.celery_app import worker_devices

    assert worker_devices("gpu", "0,1") == ["cuda:0", "cuda:1"]
    assert worker_devices("gpu", None) == ["cpu"] and worker_devices("cpu", "0") == ["cpu"]
