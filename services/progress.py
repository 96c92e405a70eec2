"""Progress and heartbeats of running tasks, from the worker to whoever waits for them.

A running job reports its progress through a callback (``report(meta)``); ``meta`` is a plain
JSON mapping, e.g. ``{"kind": "train", "fold": 3, "epoch": 4, "epochs": 20, "loss": 0.21,
"val_loss": 0.25}`` or ``{"kind": "predict", "done": 120, "total": 400}``.

* On a worker (:class:`TaskReporter`), the latest report is written to the result backend as the
  task's custom state ``PROGRESS`` (at most every :data:`MIN_WRITE_S`), and a background thread
  rewrites it every ``CLUSTERMASS_HEARTBEAT_S`` with a fresh ``heartbeat`` counter, even while the
  job reports nothing (loading data, computing KDEs). The flow waiting for the task
  (``flows._common.wait_celery``) relays the progress to :func:`emit` and sends the task again
  when the heartbeat stops for ``CLUSTERMASS_HEARTBEAT_TIMEOUT_S`` (its worker died).
* In eager mode (no broker) the report goes straight to :func:`emit`.
* :func:`emit` calls the listener installed by :func:`listen` in this process (the CLI's
  progress bars), if any.

A job may also give the reporter a ``should_stop`` check (e.g. "was my run cancelled?"): the
heartbeat thread calls it, and the next ``report`` raises :class:`TaskCancelledError`, so a
cancelled fold stops within one heartbeat on any pool (``revoke(terminate=True)`` cannot stop a
task on the ``solo`` pool).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "PROGRESS",
    "reporting",
    "MIN_WRITE_S",
    "TaskCancelledError",
    "TaskReporter",
    "emit",
    "listen",
]

#: Celery custom state of a running task that reported progress.
PROGRESS = "PROGRESS"
#: Celery's final task states (``celery.states.READY_STATES``, spelt out: no Celery import here).
_FINAL_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
#: Minimum seconds between two progress writes to the result backend (heartbeats aside).
MIN_WRITE_S = 0.5

Listener = Callable[[dict[str, Any]], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


class TaskCancelledError(RuntimeError):
    """The work this task does was cancelled while it ran (e.g. its run was cancelled)."""


def emit(meta: dict[str, Any]) -> None:
    """Hand one progress report to the listener of this process (none: dropped)."""
    with _lock:
        listeners = list(_listeners)
    for fn in listeners:
        fn(meta)


@contextmanager
def listen(fn: Listener) -> Iterator[None]:
    """Install ``fn`` as a progress listener of this process for the duration of the block."""
    with _lock:
        _listeners.append(fn)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(fn)


class TaskReporter:
    """Progress and heartbeat of one running Celery task (use as a context manager).

    Parameters
    ----------
    task : celery.Task
        The bound task that runs (``self`` of a ``bind=True`` task).
    heartbeat_s : float
        Seconds between heartbeats.
    should_stop : callable, optional
        Called by the heartbeat thread; when it returns True the next report raises
        :class:`TaskCancelledError`.
    """

    def __init__(
        self,
        task: Any,
        heartbeat_s: float,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.task = task
        self.task_id: str | None = task.request.id
        self.eager = bool(task.request.is_eager)
        self.heartbeat_s = heartbeat_s
        self.should_stop = should_stop
        self.meta: dict[str, Any] = {}
        self.beats = 0
        self.stopped = False
        self._last_write = 0.0
        self._write_lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TaskReporter:
        if not self.eager and self.task_id:
            self._write()  # a first heartbeat at once: the task is alive and started
            self._thread = threading.Thread(
                target=self._beat, name=f"heartbeat-{self.task_id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Joined before the task returns: a late heartbeat must never overwrite the task's
        # final state (SUCCESS / FAILURE) in the result backend.
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def __call__(self, meta: dict[str, Any]) -> None:
        """Report progress (``meta``: plain JSON values); raise if the work was cancelled."""
        if self.stopped:
            raise TaskCancelledError(f"task {self.task_id} stopped: its work was cancelled")
        self.meta = dict(meta)
        if self.eager:
            emit(self.meta)
            return
        now = time.monotonic()
        if now - self._last_write >= MIN_WRITE_S or meta.get("final"):
            self._write()

    def _write(self) -> None:
        with self._write_lock:
            self.beats += 1
            self._last_write = time.monotonic()
            state = {**self.meta, "heartbeat": self.beats, "time": time.time()}
            if self._ended_elsewhere():
                return
            self.task.backend.store_result(self.task_id, state, PROGRESS)

    def _ended_elsewhere(self) -> bool:
        """Whether the backend already holds a final state for this task.

        E.g. REVOKED, stored by the worker's main process when it terminates the task: a
        heartbeat of the dying child must not overwrite it with PROGRESS.
        """
        get_state = getattr(self.task.backend, "get_state", None)
        return get_state is not None and get_state(self.task_id) in _FINAL_STATES

    def _beat(self) -> None:
        while not self._done.wait(self.heartbeat_s):
            if self.should_stop is not None and not self.stopped:
                try:
                    self.stopped = bool(self.should_stop())
                except Exception:  # noqa: BLE001 - a failed check must not kill the heartbeat
                    self.stopped = False
            try:
                self._write()
            except Exception:  # noqa: BLE001,S112 - the next beat retries; the flow judges
                continue


_current = threading.local()


@contextmanager
def reporting(
    task: Any, heartbeat_s: float, should_stop: Callable[[], bool] | None = None
) -> Iterator[TaskReporter]:
    """Yield the reporter of the task running in this thread (started here if none runs yet).

    ``services.tasks.RetryingTask`` starts one around every task on a worker, so every task
    heartbeats; a task that reports progress, or can be cancelled, joins it with this.
    """
    active: TaskReporter | None = getattr(_current, "reporter", None)
    if active is not None and active.task_id == task.request.id:
        previous, active.should_stop = active.should_stop, should_stop or active.should_stop
        try:
            yield active
        finally:
            active.should_stop = previous
        return
    with TaskReporter(task, heartbeat_s, should_stop) as reporter:
        _current.reporter = reporter
        try:
            yield reporter
        finally:
            _current.reporter = active
