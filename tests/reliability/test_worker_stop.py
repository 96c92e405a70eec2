"""``docker stop`` of a worker in the middle of a fold: the fold goes back on its queue at once.

compose.yaml gives the workers ``REMAP_SIGTERM=SIGQUIT``: Docker's SIGTERM starts Celery's cold
shutdown, which lets running tasks finish for ``CLUSTERMASS_WORKER_SOFT_SHUTDOWN_S``, cancels
them, and, closing its broker channel, puts their unacknowledged messages back on the queue.
So the worker is gone well within compose's ``stop_grace_period`` (no SIGKILL, which would leave
the fold unacknowledged until the visibility timeout) and another worker trains the fold at once.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.reliability.test_worker_kill import _fold_state, _received

pytestmark = [pytest.mark.integration, pytest.mark.db]


@pytest.fixture(scope="module")
def small_mock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mocks import MockConfig, generate

    out = tmp_path_factory.mktemp("mock") / "m"
    generate(MockConfig(n_clusters=24, seed=11)).write(out)
    return out


def test_sigterm_with_remap_requeues_the_running_fold_at_once(
    workers, service_env: dict[str, str], small_mock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.celery_app import get_celery
    from services.jobs.simulation import ingest_mock_directory
    from services.jobs.training import create_run
    from services.settings import get_settings

    soft_s = 2.0
    # as compose.yaml sets them; a visibility timeout longer than the test, so only the
    # shutdown's own requeue can bring the message back
    workers.env.update(
        {
            "REMAP_SIGTERM": "SIGQUIT",
            "CLUSTERMASS_WORKER_SOFT_SHUTDOWN_S": str(soft_s),
            "CLUSTERMASS_VISIBILITY_TIMEOUT_S": "3600",
        }
    )
    monkeypatch.setenv("CLUSTERMASS_VISIBILITY_TIMEOUT_S", "3600")
    get_settings.cache_clear()
    get_celery.cache_clear()

    url = service_env["CLUSTERMASS_DATABASE_URL"]
    summary = ingest_mock_directory(small_mock)
    config = {
        "model": {"kind": "single"},
        # enough epochs that the fold outlasts the soft shutdown
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
    time.sleep(1.0)  # inside the training loop

    stopped = time.monotonic()
    os.kill(first.pid, signal.SIGTERM)  # what `docker stop` sends
    first.wait(timeout=60)
    took = time.monotonic() - stopped
    print(f"worker stopped {took:.1f} s after SIGTERM (soft shutdown {soft_s} s)")
    assert took < 60, workers.log("gpu0")[-3000:]  # compose's stop_grace_period is 90 s
    assert "Soft Shutdown" in workers.log("gpu0")
    assert _fold_state(url, run_id, fold)[1] == 0  # cancelled mid-fold: nothing half-written

    workers.start("gpu", "gpu1")  # the replacement takes the requeued message
    out = result.get(timeout=300)
    status, n_pred, n_distinct = _fold_state(url, run_id, fold)
    assert out["status"] == "done" and status == "done"
    assert n_pred == n_distinct == out["n_test"] > 0
    logs = workers.log("gpu0") + workers.log("gpu1")
    assert _received(logs, result.id) == 2, logs[-3000:]  # the same task, delivered twice
