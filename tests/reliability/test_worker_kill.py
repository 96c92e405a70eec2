"""A worker process SIGKILLed in the middle of a training fold: the task is redelivered, completes
once, and the results hold each prediction exactly once.

The process killed is the prefork pool child that runs the task (what the OOM killer picks); its
worker's main process survives and, with ``task_reject_on_worker_lost``, puts the message back
on the queue at once. Without that setting the main process marks the task failed
(``WorkerLostError``) and acknowledges it: nothing would ever run the fold again, and this test
fails. (A worker killed as a whole never acknowledges: the broker redelivers after its
visibility timeout whatever the setting.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.integration, pytest.mark.db]


@pytest.fixture(scope="module")
def small_mock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mocks import MockConfig, generate

    out = tmp_path_factory.mktemp("mock") / "m"
    generate(MockConfig(n_clusters=24, seed=11)).write(out)
    return out


def _fold_state(url: str, run_id: int, fold: int) -> tuple[str, int, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            status = conn.scalar(
                sa.text("SELECT status FROM model_run_folds WHERE run_id = :r AND fold = :f"),
                {"r": run_id, "f": fold},
            )
            n_pred = conn.scalar(
                sa.text("SELECT count(*) FROM predictions WHERE run_id = :r AND fold = :f"),
                {"r": run_id, "f": fold},
            )
            n_distinct = conn.scalar(
                sa.text(
                    "SELECT count(DISTINCT cluster_id) FROM predictions WHERE run_id = :r AND fold = :f"
                ),
                {"r": run_id, "f": fold},
            )
        return status, n_pred, n_distinct
    finally:
        engine.dispose()


def _received(log: str, task_id: str) -> int:
    return log.count(f"clustermass.train_fold[{task_id}] received")


def test_sigkilled_worker_task_is_redelivered_and_completes_once(
    workers, service_env: dict[str, str], small_mock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.celery_app import get_celery
    from services.jobs.simulation import ingest_mock_directory
    from services.jobs.training import create_run
    from services.settings import get_settings

    # A visibility timeout longer than the test: the broker never hands the unacknowledged
    # message out again by itself (with the fixture's 4 s, a worker starting up restores it and
    # runs it a second time concurrently), so only the worker's reject-and-requeue can.
    workers.env["CLUSTERMASS_VISIBILITY_TIMEOUT_S"] = "3600"
    monkeypatch.setenv("CLUSTERMASS_VISIBILITY_TIMEOUT_S", "3600")
    get_settings.cache_clear()
    get_celery.cache_clear()

    url = service_env["CLUSTERMASS_DATABASE_URL"]
    summary = ingest_mock_directory(small_mock)
    config = {
        "model": {"kind": "single"},
        # enough epochs that the fold is still training when its process is killed
        "training": {"max_epochs": 40, "patience": 40, "batch_size": 8, "seed": 3},
    }
    run_id, folds = create_run(summary.catalogue_id, config)
    fold = folds[0]

    first = workers.start("gpu", "gpu0", pool="prefork")
    result = get_celery().tasks["clustermass.train_fold"].apply_async(args=(run_id, fold))
    deadline = time.time() + 120
    while _fold_state(url, run_id, fold)[0] != "running":
        assert time.time() < deadline, workers.log("gpu0")
        time.sleep(0.2)
    workers.start("gpu", "gpu1")  # a second worker, ready to take the redelivered task
    time.sleep(1.0)  # inside the training loop
    workers.kill_pool_child(first)
    status, n_pred, _ = _fold_state(url, run_id, fold)
    assert (status, n_pred) == ("running", 0)  # killed mid-task: nothing half-written

    # Redelivered at once (no visibility timeout to wait for): the fold ends done, in bounded time.
    out = result.get(timeout=300)
    status, n_pred, n_distinct = _fold_state(url, run_id, fold)
    assert out["status"] == "done" and status == "done"
    assert n_pred == n_distinct == out["n_test"] > 0
    logs = workers.log("gpu0") + workers.log("gpu1")
    assert _received(logs, result.id) == 2, logs[-3000:]  # the same task, delivered twice

    # Delivered again (e.g. a second redelivery), the finished fold is not retrained.
    again = get_celery().tasks["clustermass.train_fold"].apply_async(args=(run_id, fold))
    assert again.get(timeout=120)["status"] == "done"
    assert _fold_state(url, run_id, fold)[1] == n_pred
