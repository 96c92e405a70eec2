"""Task progress and heartbeats (services/progress.py) and their rendering in the CLI."""

from __future__ import annotations

import io
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from services.progress import PROGRESS, TaskCancelledError, TaskReporter, emit, listen


class _Backend:
    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, Any], str]] = []
        self.lock = threading.Lock()

    def store_result(self, task_id: str, meta: dict[str, Any], state: str) -> None:
        with self.lock:
            self.writes.append((task_id, dict(meta), state))


def _task(eager: bool) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(id="t-1", is_eager=eager), backend=_Backend())


def test_on_a_worker_progress_and_heartbeats_go_to_the_result_backend_until_the_task_ends() -> None:
    task = _task(eager=False)
    with TaskReporter(task, heartbeat_s=0.05) as report:
        report({"kind": "train", "fold": 2, "epoch": 1, "loss": 0.5, "final": True})
        time.sleep(0.3)  # nothing reported: heartbeats keep coming
    n_at_exit = len(task.backend.writes)
    time.sleep(0.2)
    assert len(task.backend.writes) == n_at_exit  # no heartbeat after the task returned
    states = {state for _, _, state in task.backend.writes}
    assert states == {PROGRESS}
    beats = [meta["heartbeat"] for _, meta, _ in task.backend.writes]
    assert beats == sorted(beats) and len(set(beats)) == len(beats) >= 4
    last = task.backend.writes[-1][1]
    assert last["fold"] == 2 and last["loss"] == 0.5  # heartbeats carry the latest progress


def test_a_cancelled_task_stops_at_its_next_report() -> None:
    task = _task(eager=False)
    cancelled = threading.Event()
    with TaskReporter(task, heartbeat_s=0.05, should_stop=cancelled.is_set) as report:
        report({"kind": "train", "epoch": 1})
        cancelled.set()
        time.sleep(0.2)
        with pytest.raises(TaskCancelledError):
            report({"kind": "train", "epoch": 2})


def test_in_eager_mode_progress_goes_to_this_process_listener_and_not_the_backend() -> None:
    task = _task(eager=True)
    seen: list[dict[str, Any]] = []
    with listen(seen.append), TaskReporter(task, heartbeat_s=0.01) as report:
        report({"kind": "predict", "done": 1, "total": 4})
        time.sleep(0.05)
    report({"kind": "predict", "done": 2, "total": 4})  # listener gone: dropped
    assert seen == [{"kind": "predict", "done": 1, "total": 4}]
    assert task.backend.writes == []


def _events(run_id: int = 7) -> list[dict[str, Any]]:
    ev: list[dict[str, Any]] = [{"kind": "run", "run_id": run_id, "model": "single"}]
    for epoch in (1, 2):
        ev.append(
            {"kind": "train", "run_id": run_id, "fold": 3, "member": 0, "epoch": epoch,
             "epochs": 5, "step": 4, "steps": 4, "loss": 0.25 / epoch, "val_loss": 0.3 / epoch}
        )  # fmt: skip
    ev.append({"kind": "fold-done", "run_id": run_id, "fold": 3, "sigma_lnM": 0.123,
               "bias_dex": 0.01, "seconds": 4.5})  # fmt: skip
    return ev


def test_on_a_terminal_fit_draws_a_bar_per_fold_with_epoch_loss_and_eta() -> None:
    from cli.commands._progress import ProgressView

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    view = ProgressView(console)
    with view.progress:
        for meta in _events()[:-1]:
            emit_to(view, meta)
        task = view.progress.tasks[0]
        assert task.description == "single (run 7) fold 3"
        assert (task.completed, task.total) == (8, 20)  # 2 of 5 epochs of 4 steps
        assert "epoch 2/5" in task.fields["info"] and "loss 0.125" in task.fields["info"]
        assert "val 0.15" in task.fields["info"]
        emit_to(view, _events()[-1])  # stopped early at epoch 2: the bar completes
        assert task.finished and "sigma_lnM 0.123" in task.fields["info"]
    assert "single (run 7) fold 3" in out.getvalue()


def test_off_a_terminal_fit_prints_one_line_per_fold_and_no_bar() -> None:
    from cli.commands._progress import ProgressView

    out = io.StringIO()
    view = ProgressView(Console(file=out, force_terminal=False, width=160))
    with view.progress:
        for meta in _events():
            emit_to(view, meta)
    assert out.getvalue().splitlines() == [
        "single (run 7) fold 3 done: sigma_lnM 0.123, bias 0.01 dex, 4.5 s"
    ]


def emit_to(view: Any, meta: dict[str, Any]) -> None:
    """Deliver through the process's listener, as the flow's wait loop does."""
    with listen(view):
        emit(meta)


def test_a_task_joins_the_heartbeat_its_worker_started_instead_of_starting_another() -> None:
    from services.progress import reporting

    task = _task(eager=False)
    stop = threading.Event()
    with reporting(task, heartbeat_s=0.05) as outer:  # what RetryingTask.__call__ starts
        with reporting(task, heartbeat_s=0.05, should_stop=stop.is_set) as inner:
            assert inner is outer
            stop.set()
            time.sleep(0.2)
            with pytest.raises(TaskCancelledError):
                inner({"kind": "train", "epoch": 1})
        assert outer.should_stop is None  # the task's own check ends with it
    heartbeat_threads = [t for t in threading.enumerate() if t.name.startswith("heartbeat-")]
    assert heartbeat_threads == []


def test_a_heartbeat_never_overwrites_a_final_state() -> None:
    """A terminated task's child may still heartbeat for a moment after its worker stored
    REVOKED: the final state must stay (seen as a fold left 'PROGRESS' after a cancel)."""
    task = _task(eager=False)
    states = {"t-1": "STARTED"}
    task.backend.get_state = lambda task_id: states[task_id]
    with TaskReporter(task, heartbeat_s=0.05):
        time.sleep(0.15)
        assert task.backend.writes  # heartbeats while running
        states["t-1"] = "REVOKED"  # the worker's main process terminated the task
        n = len(task.backend.writes)
        time.sleep(0.25)
        assert len(task.backend.writes) == n
