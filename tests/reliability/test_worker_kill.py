"""A worker SIGKILLed in the middle of a training fold: the task is redelivered to a new worker,
completes once, and the results hold each prediction exactly once."""

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


def test_sigkilled_worker_task_completes_once_on_another(
    workers, service_env: dict[str, str], small_mock: Path
) -> None:
    from services.celery_app import get_celery
    from services.jobs.simulation import ingest_mock_directory
    from services.jobs.training import create_run

    url = service_env["CLUSTERMASS_DATABASE_URL"]
    summary = ingest_mock_directory(small_mock)
    config = {
        "model": {"kind": "single"},
        # enough epochs that the fold is still training when the worker is killed
        "training": {"max_epochs": 40, "patience": 40, "batch_size": 8, "seed": 3},
    }
    run_id, folds = create_run(summary.catalogue_id, config)
    fold = folds[0]

    first = workers.start("gpu", "gpu0")
    result = get_celery().tasks["clustermass.train_fold"].apply_async(args=(run_id, fold))
    deadline = time.time() + 120
    while _fold_state(url, run_id, fold)[0] != "running":
        assert time.time() < deadline, workers.log("gpu0")
        time.sleep(0.2)
    time.sleep(1.0)  # inside the training loop
    workers.kill(first)
    status, n_pred, _ = _fold_state(url, run_id, fold)
    assert (status, n_pred) == ("running", 0)  # killed mid-task: nothing half-written

    workers.start("gpu", "gpu1")  # restores the unacknowledged message after the visibility timeout
    out = result.get(timeout=600)
    status, n_pred, n_distinct = _fold_state(url, run_id, fold)
    assert out["status"] == "done" and status == "done"
    assert n_pred == n_distinct == out["n_test"] > 0
    assert result.id in workers.log("gpu1")  # the same task, redelivered

    # Delivered again (e.g. a second redelivery), the finished fold is not retrained.
    again = get_celery().tasks["clustermass.train_fold"].apply_async(args=(run_id, fold))
    assert again.get(timeout=120)["status"] == "done"
    assert _fold_state(url, run_id, fold)[1] == n_pred
