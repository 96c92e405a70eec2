"""No silent hangs while a flow waits for Celery work (issue 16), against a real Redis broker and
real ``clustermass worker`` processes:

* ``fit`` with no worker on the ``gpu`` queue exits non-zero within the configured wait, naming
  the queue and the command that starts a worker;
* a worker SIGKILLed as a whole (no reject-and-requeue: only the 1 h visibility timeout would
  bring its message back) is noticed by its task's stopped heartbeat and the fold is sent again,
  within the heartbeat window, to another worker that completes it; the wait relays the worker's
  per-epoch progress;
* a task running past its deadline is revoked and the wait fails, naming the setting;
* an interrupt (Ctrl-C) of ``fit`` revokes the run's Celery tasks and marks the run cancelled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.services_fixtures import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.db]

LONG_TRAINING = {
    "model": {"kind": "single"},
    # enough epochs that a fold is still training when the test acts on it
    "training": {"max_epochs": 60, "patience": 60, "batch_size": 8, "seed": 3},
}


@pytest.fixture(scope="module")
def small_mock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mocks import MockConfig, generate

    out = tmp_path_factory.mktemp("mock") / "m"
    generate(MockConfig(n_clusters=24, seed=11)).write(out)
    return out


def _settings(monkeypatch: pytest.MonkeyPatch, workers: object, **values: str) -> None:
    """Set CLUSTERMASS_* values here and for the workers started afterwards."""
    from services.celery_app import get_celery
    from services.settings import get_settings

    for key, value in values.items():
        monkeypatch.setenv(f"CLUSTERMASS_{key}", value)
        workers.env[f"CLUSTERMASS_{key}"] = value
    get_settings.cache_clear()
    get_celery.cache_clear()


def _scalar(url: str, sql: str, **params: object) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text(sql), params)
    finally:
        engine.dispose()


def _wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_fit_with_no_gpu_worker_exits_within_the_wait_naming_the_queue(
    prefect_harness: None,
    workers,
    service_env: dict[str, str],
    small_mock: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.settings import PREFECT_API_URL

    from services.jobs.simulation import ingest_mock_directory

    wait_s = 3
    _settings(monkeypatch, workers, WORKER_WAIT_S=str(wait_s))
    summary = ingest_mock_directory(small_mock)
    workers.start("cpu", "cpu0")  # create-run is served; nothing consumes the gpu queue
    env = {**os.environ, **workers.env, "PREFECT_API_URL": PREFECT_API_URL.value()}
    cmd = [sys.executable, "-m", "cli.main", "fit", "--catalogue", str(summary.catalogue_id)]
    began = time.monotonic()
    # Before issue 16 this waited forever: the timeout makes that a failure, not a hang.
    done = subprocess.run(
        [*cmd, "--models", "single", "--epochs", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    elapsed = time.monotonic() - began
    assert done.returncode != 0, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert "no worker consumes queue 'gpu'" in err, done.stderr
    assert "clustermass worker --queue gpu" in err, done.stderr
    # the CLI's start-up (Prefect client, torch) and create-run on the cpu worker take most of it
    assert elapsed < 150, elapsed
    # nothing was sent to the gpu queue: no fold waits there to train later
    import redis

    assert redis.Redis.from_url(service_env["CLUSTERMASS_BROKER_URL"]).llen("gpu") == 0
    # and the run says why it stopped
    url = service_env["CLUSTERMASS_DATABASE_URL"]
    assert _scalar(url, "SELECT status FROM model_runs") == "failed"
    assert "no worker consumes queue 'gpu'" in _scalar(url, "SELECT error FROM model_runs")


def test_a_killed_workers_fold_is_sent_again_within_the_heartbeat_window(
    workers, service_env: dict[str, str], small_mock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows._common as common
    from services.jobs.simulation import ingest_mock_directory
    from services.jobs.training import create_run
    from services.progress import listen

    heartbeat_timeout = 6.0
    # The broker itself would hand the unacknowledged message out again only after an hour.
    _settings(
        monkeypatch, workers, VISIBILITY_TIMEOUT_S="3600", HEARTBEAT_S="0.5",
        HEARTBEAT_TIMEOUT_S=str(heartbeat_timeout),
    )  # fmt: skip
    url = service_env["CLUSTERMASS_DATABASE_URL"]
    summary = ingest_mock_directory(small_mock)
    run_id, folds = create_run(summary.catalogue_id, LONG_TRAINING)
    fold = folds[0]

    first = workers.start("gpu", "gpu0")
    second = workers.start("gpu", "gpu1")
    # gpu1 must not take the fold first: stop it consuming until the fold runs on gpu0
    name = "clustermass.train_fold"
    from services.celery_app import get_celery

    get_celery().control.cancel_consumer("gpu", destination=["gpu1@test"], reply=True)
    result = common.submit_celery(name, run_id, fold)
    status_sql = "SELECT status FROM model_run_folds WHERE run_id = :r AND fold = :f"
    _wait_for(lambda: _scalar(url, status_sql, r=run_id, f=fold) == "running", 120, "training")
    time.sleep(1.0)
    workers.kill(first)  # the whole worker: nobody rejects or acknowledges its message
    killed_at = time.monotonic()
    get_celery().control.add_consumer("gpu", destination=["gpu1@test"], reply=True)

    resent_at: list[float] = []

    def resend() -> object:
        resent_at.append(time.monotonic())
        return common.submit_celery(name, run_id, fold)

    events: list[dict] = []
    with listen(events.append):
        out = common.wait_celery(name, result, resend=resend, timeout=600)

    assert len(resent_at) == 1
    # noticed within the heartbeat window (plus polling), not after the visibility timeout
    assert resent_at[0] - killed_at < heartbeat_timeout + 3.0, resent_at[0] - killed_at
    assert out["status"] == "done"
    assert _scalar(url, status_sql, r=run_id, f=fold) == "done"
    n_pred = _scalar(url, "SELECT count(*) FROM predictions WHERE run_id = :r", r=run_id)
    assert n_pred == out["n_test"] > 0
    assert f"{name}[" in workers.log("gpu1") and second.poll() is None
    # the wait relayed the workers' per-epoch progress
    epochs = [e for e in events if e.get("kind") == "train" and e.get("val_loss") is not None]
    assert epochs and all(e["fold"] == fold and e["epochs"] == 60 for e in epochs)
    assert all(isinstance(e["loss"], float) for e in epochs)
    assert max(e["epoch"] for e in epochs) >= 2


def test_a_task_past_its_deadline_is_revoked_and_the_wait_fails(
    workers, service_env: dict[str, str], small_mock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows._common as common
    from services.jobs.simulation import ingest_mock_directory
    from services.jobs.training import create_run

    _settings(monkeypatch, workers, TASK_DEADLINE_S="3", HEARTBEAT_S="0.5")
    summary = ingest_mock_directory(small_mock)
    run_id, folds = create_run(summary.catalogue_id, LONG_TRAINING)
    workers.start("gpu", "gpu0", pool="prefork")
    began = time.monotonic()
    with pytest.raises(common.TaskDeadlineError, match="CLUSTERMASS_TASK_DEADLINE_S"):
        common.run_celery("clustermass.train_fold", run_id, folds[0], timeout=300)
    waited = time.monotonic() - began
    assert waited < 60, waited  # start-up of the fold (data, model) + 3 s, not 60 epochs
    # revoked with terminate=True: the prefork child running it is stopped
    log_path = Path(workers.logdir) / "worker-gpu0.log"
    _wait_for(lambda: "Terminating" in log_path.read_text(), 30, "the task's termination")
    url = service_env["CLUSTERMASS_DATABASE_URL"]
    n_done = "SELECT count(*) FROM model_run_folds WHERE run_id = :r AND status = 'done'"
    assert _scalar(url, n_done, r=run_id) == 0


def _task_states(broker_url: str) -> dict[str, tuple[str, object]]:
    import redis

    client = redis.Redis.from_url(broker_url)
    out = {}
    for key in client.scan_iter("celery-task-meta-*"):
        meta = json.loads(client.get(key))
        out[meta["task_id"]] = (meta["status"], meta["result"])
    return out


def test_an_interrupted_fit_revokes_its_tasks_and_marks_the_run_cancelled(
    prefect_harness: None,
    workers,
    service_env: dict[str, str],
    small_mock: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.train import train_models
    from services.jobs.simulation import ingest_mock_directory

    _settings(monkeypatch, workers, HEARTBEAT_S="0.5")
    url = service_env["CLUSTERMASS_DATABASE_URL"]
    summary = ingest_mock_directory(small_mock)
    workers.start("cpu", "cpu0")
    workers.start("gpu", "gpu0", pool="prefork")  # one fold at a time: the others wait queued

    def interrupt_when_training() -> None:
        sql = "SELECT count(*) FROM model_run_folds WHERE status = 'running'"
        _wait_for(lambda: _scalar(url, sql) == 1, 240, "a fold to train")
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C

    threading.Thread(target=interrupt_when_training, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        train_models(
            str(summary.catalogue_id), ["single"], None, {"training": LONG_TRAINING["training"]}
        )

    run_status = _scalar(url, "SELECT status FROM model_runs")
    assert run_status == "cancelled"
    assert "revoked" in _scalar(url, "SELECT error FROM model_runs")
    fold_states = "SELECT string_agg(DISTINCT status, ',') FROM model_run_folds"
    assert _scalar(url, fold_states) == "cancelled"
    n_folds = _scalar(url, "SELECT count(*) FROM model_run_folds")
    assert n_folds >= 2

    # Every fold task ends revoked (the running one terminated, the queued ones discarded by
    # the worker): none trains later.
    broker = service_env["CLUSTERMASS_BROKER_URL"]

    def fold_tasks() -> dict[str, tuple[str, object]]:
        return {
            k: v
            for k, v in _task_states(broker).items()
            if v[0] not in ("SUCCESS",) or not isinstance(v[1], dict) or "folds" not in v[1]
        }

    def all_revoked() -> bool:
        states = [s for s, _ in fold_tasks().values() if s != "SUCCESS"]
        return len(states) == n_folds and set(states) == {"REVOKED"}

    _wait_for(all_revoked, 60, f"every fold task revoked: {_task_states(broker)}")
    time.sleep(2.0)
    assert _scalar(url, "SELECT count(*) FROM predictions") == 0
    assert _scalar(url, fold_states) == "cancelled"


def test_sending_to_a_queue_nobody_consumes_fails_fast_and_sends_nothing(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    import flows._common as common
    from services.celery_app import get_celery
    from services.settings import get_settings

    monkeypatch.setenv("CLUSTERMASS_WORKER_WAIT_S", "1.5")
    get_settings.cache_clear()
    get_celery.cache_clear()
    broker = redis.Redis.from_url(service_env["CLUSTERMASS_BROKER_URL"])
    queued = broker.llen("gpu")  # other tests of the session may have left messages there
    # Precondition: no worker of an earlier test still answers for the gpu queue (a worker
    # being stopped may reply to the broadcast for a moment).
    from services.celery_app import queue_consumers

    deadline = time.monotonic() + 30
    while (alive := queue_consumers("gpu", timeout_s=1.0)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive, f"workers of earlier tests still consume gpu: {alive}"
    # ... and this process has no recent "gpu is consumed" sighting from those tests (a sender
    # trusts one for _CONSUMED_FOR_S = 10 s, to avoid a broadcast per fold).
    monkeypatch.setattr(common, "_consumed", {})
    began = time.monotonic()
    with pytest.raises(common.NoWorkerError) as caught:
        common.run_celery("clustermass.predict", 1, 1)
    assert time.monotonic() - began < 10
    message = str(caught.value)
    assert "queue 'gpu'" in message and "`clustermass worker --queue gpu`" in message
    assert broker.llen("gpu") == queued  # nothing was sent


def test_in_eager_mode_no_worker_is_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import flows._common as common
    from services.settings import get_settings

    monkeypatch.delenv("CLUSTERMASS_BROKER_URL", raising=False)
    get_settings.cache_clear()
    asked: list[str] = []
    monkeypatch.setattr(common, "queue_consumers", lambda q, **_: asked.append(q) or [])
    try:
        assert common.ensure_worker("gpu") == []
    finally:
        get_settings.cache_clear()
    assert asked == []


def test_a_sigterm_to_the_fit_process_cancels_like_a_prefect_cancel(
    prefect_harness: None,
    workers,
    service_env: dict[str, str],
    small_mock: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Cancelling a flow run in the Prefect UI makes its runner send SIGTERM to the process
    # running the flow; Prefect raises it there as TerminationSignal.
    import yaml
    from prefect.settings import PREFECT_API_URL

    from services.jobs.simulation import ingest_mock_directory

    _settings(monkeypatch, workers, HEARTBEAT_S="0.5")
    url = service_env["CLUSTERMASS_DATABASE_URL"]
    summary = ingest_mock_directory(small_mock)
    config = tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump({"training": LONG_TRAINING["training"]}))
    workers.start("cpu", "cpu0")
    workers.start("gpu", "gpu0", pool="prefork")
    env = {**os.environ, **workers.env, "PREFECT_API_URL": PREFECT_API_URL.value()}
    cmd = [sys.executable, "-m", "cli.main", "fit", "--catalogue", str(summary.catalogue_id)]
    proc = subprocess.Popen(
        [*cmd, "--models", "single", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        sql = "SELECT count(*) FROM model_run_folds WHERE status = 'running'"
        _wait_for(lambda: (_scalar(url, sql) or 0) == 1, 240, "a fold to train")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output
    assert _scalar(url, "SELECT status FROM model_runs") == "cancelled", output
    assert "TerminationSignal" in _scalar(url, "SELECT error FROM model_runs")
    fold_states = "SELECT string_agg(DISTINCT status, ',') FROM model_run_folds"
    assert _scalar(url, fold_states) == "cancelled"
    time.sleep(3.0)  # a fold that still trained would finish or write by now
    assert _scalar(url, "SELECT count(*) FROM predictions") == 0
    assert _scalar(url, fold_states) == "cancelled"


def test_revoking_ends_the_waits_of_queued_tasks_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel revokes what this process waits for; a wait on a task still queued (no REVOKED
    state until a worker takes its message, maybe never) must end too, or the flow's other fold
    threads keep the process alive after the cancel (seen: a SIGTERM'd fit that did not exit)."""
    import threading as th

    import flows._common as common

    class Queued:  # an AsyncResult whose message no worker has taken
        def __init__(self, task_id: str) -> None:
            self.id, self.state, self.info, self.revoked = task_id, "PENDING", None, False

        def revoke(self, **_: object) -> None:
            self.revoked = True

    monkeypatch.setattr(common, "_in_flight", {})
    monkeypatch.setattr(common, "_revoked", set())
    results = [Queued(f"t{i}") for i in range(3)]
    for r in results:
        common._in_flight[r.id] = r
    errors: list[BaseException] = []

    def wait(r: Queued) -> None:
        try:
            common._watch("clustermass.train_fold", r, timeout=20, resend=None)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [th.Thread(target=wait, args=(r,)) for r in results]
    for t in threads:
        t.start()
    time.sleep(0.5)
    began = time.monotonic()
    assert sorted(common.revoke_in_flight()) == ["t0", "t1", "t2"]
    for t in threads:
        t.join(timeout=5)
    assert time.monotonic() - began < 3 and not any(t.is_alive() for t in threads)
    assert all(r.revoked for r in results)
    assert len(errors) == 3 and all(isinstance(e, common.CeleryTaskRevokedError) for e in errors)
