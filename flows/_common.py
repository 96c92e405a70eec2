"""Shared flow plumbing: submit Celery tasks and wait, retry only transient errors, artifacts.

Waiting never hangs silently (:func:`wait_celery`):

* before a task is sent, some worker must consume its queue (:func:`ensure_worker`, waiting up to
  ``CLUSTERMASS_WORKER_WAIT_S``), and while it stays queued the check is repeated;
* a running task heartbeats (``services.progress.TaskReporter``); one whose heartbeat stops for
  ``CLUSTERMASS_HEARTBEAT_TIMEOUT_S`` is lost with its worker and is sent again (tasks are
  idempotent by natural keys);
* a task running longer than ``CLUSTERMASS_TASK_DEADLINE_S`` is revoked and the flow fails;
* an interrupt (Ctrl-C, a Prefect cancel's SIGTERM) revokes the task, and
  :func:`revoke_in_flight` revokes every task this process sent and still waits for;
* its progress reports are relayed to ``services.progress.emit`` (the CLI's progress bars).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import states
from celery.result import EagerResult
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from astro.numbers import round_significant
from services.celery_app import get_celery, queue_consumers, task_queue
from services.progress import PROGRESS, emit
from services.settings import get_settings
from services.transient import is_transient

__all__ = [
    "CeleryTaskFailedError",
    "CeleryTaskRevokedError",
    "NoWorkerError",
    "TaskDeadlineError",
    "ensure_worker",
    "revoke_in_flight",
    "run_celery",
    "wait_celery",
    "submit_celery",
    "transient_only",
    "transient_retries",
    "table_artifact",
    "image_markdown",
]

log = logging.getLogger(__name__)

#: Seconds between two looks at a waited-for task's state.
POLL_S = 0.25
#: A queue seen consumed is not asked again for this long (one broadcast per fold otherwise).
_CONSUMED_FOR_S = 10.0

#: queue -> monotonic time a worker of it was last seen alive (a broadcast reply or a heartbeat)
_consumed: dict[str, float] = {}
_in_flight: dict[str, Any] = {}
_in_flight_lock = threading.Lock()
#: ids revoked by :func:`revoke_in_flight`: their waits end at once (a queued task's REVOKED
#: state appears only when a worker takes its message, which may be never).
_revoked: set[str] = set()


class CeleryTaskFailedError(RuntimeError):
    """A Celery task failed on its worker, after the worker's own retries: final, never retried.

    Celery already retried transient errors on the worker (``services.tasks``); retrying the
    whole task again from the flow would multiply the attempts. The worker's exception is the
    ``__cause__``.
    """

    def __init__(self, name: str, task_id: str, error: BaseException) -> None:
        super().__init__(f"Celery task {name} ({task_id}) failed on its worker: {error!r}")
        self.task_name = name
        self.task_id = task_id
        self.error = error


class CeleryTaskRevokedError(RuntimeError):
    """A Celery task was revoked (its flow or run was cancelled) before it finished."""

    def __init__(self, name: str, task_id: str) -> None:
        super().__init__(f"Celery task {name} ({task_id}) was revoked (cancelled)")
        self.task_name = name
        self.task_id = task_id


class NoWorkerError(RuntimeError):
    """No live worker consumes the queue a task is routed to."""

    def __init__(self, queue: str, waited_s: float) -> None:
        super().__init__(
            f"no worker consumes queue {queue!r} (waited {waited_s:g} s, "
            f"CLUSTERMASS_WORKER_WAIT_S): start one with `clustermass worker --queue {queue}` "
            "against the same CLUSTERMASS_BROKER_URL"
        )
        self.queue = queue


class TaskDeadlineError(RuntimeError):
    """A Celery task ran past its deadline (``CLUSTERMASS_TASK_DEADLINE_S``) and was revoked."""

    def __init__(self, name: str, task_id: str, queue: str, deadline_s: float) -> None:
        super().__init__(
            f"Celery task {name} ({task_id}) on queue {queue!r} still running after "
            f"{deadline_s:g} s (CLUSTERMASS_TASK_DEADLINE_S): revoked; raise the deadline for "
            "longer jobs"
        )
        self.task_name = name
        self.task_id = task_id


def _eager() -> bool:
    return get_settings().celery_eager


def ensure_worker(queue: str, *, wait_s: float | None = None) -> list[str]:
    """Wait (up to ``wait_s``, default ``CLUSTERMASS_WORKER_WAIT_S``) for a worker on ``queue``.

    Returns the consuming workers' names ([] in eager mode, where nothing is checked); raises
    :class:`NoWorkerError` naming the queue and the command that starts a worker.
    """
    if _eager():
        return []
    wait_s = get_settings().worker_wait_s if wait_s is None else wait_s
    start = time.monotonic()
    while True:
        remaining = wait_s - (time.monotonic() - start)
        found = queue_consumers(queue, timeout_s=max(0.2, min(1.0, remaining)))
        if found:
            _consumed[queue] = time.monotonic()
            return found
        if time.monotonic() - start >= wait_s:
            raise NoWorkerError(queue, wait_s)
        time.sleep(min(0.5, max(0.0, remaining)))


def submit_celery(name: str, *args: Any, **kwargs: Any):  # noqa: ANN201 - celery AsyncResult
    """Submit the Celery task ``name`` (routed to its queue); eager mode runs it here and now.

    With a broker, a worker must consume the task's queue first (:func:`ensure_worker`).
    """
    if not _eager():
        queue = task_queue(name)
        if time.monotonic() - _consumed.get(queue, -1e9) > _CONSUMED_FOR_S:
            ensure_worker(queue)
    app = get_celery()
    result = app.tasks[name].apply_async(args=args, kwargs=kwargs)
    if not isinstance(result, EagerResult):
        with _in_flight_lock:
            _in_flight[result.id] = result
    return result


def revoke_in_flight(*, terminate: bool = True) -> list[str]:
    """Revoke every task this process sent and still waits for; return their ids.

    ``terminate=True`` also stops those already running (prefork pools; a ``solo`` pool cannot
    terminate: the task sees its cancelled run at its next heartbeat).
    """
    with _in_flight_lock:
        pending = list(_in_flight.values())
        _in_flight.clear()
        _revoked.update(r.id for r in pending)
    for result in pending:
        result.revoke(terminate=terminate, signal="SIGTERM")
    return [r.id for r in pending]


def run_celery(name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """Submit the Celery task ``name`` and wait for its result (see :func:`wait_celery`).

    A task lost with its worker is sent again with the same arguments.
    """
    return wait_celery(
        name,
        submit_celery(name, *args, **kwargs),
        timeout=timeout,
        resend=lambda: submit_celery(name, *args, **kwargs),
    )


def wait_celery(
    name: str,
    result: Any,
    *,
    timeout: float | None = None,
    resend: Callable[[], Any] | None = None,
) -> Any:
    """Wait for a submitted Celery task; return its value or raise its error.

    In eager mode the task's own error has already propagated from :func:`submit_celery` (the
    Prefect task around it retries it when transient). On a worker, a task that failed on a
    transient error raises :class:`CeleryTaskFailedError`: the worker has already retried it.
    Its other errors, and errors reaching the broker or the result backend, propagate as they
    are (the latter are transient: the Prefect task retries them).

    With a broker the wait is watched (module docstring): no worker on the queue raises
    :class:`NoWorkerError`; a stopped heartbeat sends the task again through ``resend`` (without
    one, :class:`CeleryTaskFailedError`); the deadline raises :class:`TaskDeadlineError`; an
    interrupt revokes the task and propagates; a revoked task raises
    :class:`CeleryTaskRevokedError`. ``timeout`` (seconds) bounds the whole wait.
    """
    if not isinstance(result, EagerResult):
        result = _watch(name, result, timeout=timeout, resend=resend)
    value = result.get(timeout=timeout, propagate=False, disable_sync_subtasks=False)
    if result.state == states.REVOKED:
        raise CeleryTaskRevokedError(name, result.id)
    if result.failed():
        if isinstance(value, BaseException) and not is_transient(value):
            raise value
        error = value if isinstance(value, BaseException) else RuntimeError(str(value))
        raise CeleryTaskFailedError(name, result.id, error) from error
    return value


def _watch(
    name: str, result: Any, *, timeout: float | None, resend: Callable[[], Any] | None
) -> Any:
    """Poll ``result`` until it is ready (module docstring); return the result that finished."""
    settings = get_settings()
    queue = task_queue(name)
    begin = time.monotonic()
    queued_since = begin
    started_at: float | None = None
    beat: Any = None
    beat_at = begin
    try:
        while True:
            if result.id in _revoked:  # this process cancelled it (revoke_in_flight)
                raise CeleryTaskRevokedError(name, result.id)
            state = result.state
            now = time.monotonic()
            if state in states.READY_STATES:
                return result
            if timeout is not None and now - begin > timeout:
                raise TimeoutError(f"Celery task {name} ({result.id}): no result in {timeout} s")
            if state in (states.STARTED, PROGRESS):
                if started_at is None:
                    started_at = beat_at = now
                info = result.info if state == PROGRESS else None
                if isinstance(info, dict) and info.get("heartbeat") != beat:
                    beat, beat_at = info.get("heartbeat"), now
                    _consumed[queue] = now  # a worker of this queue is alive
                    emit({**info, "task": name, "task_id": result.id})
                # Only a task seen heartbeating can be declared lost (a worker of an older
                # version never heartbeats: the visibility timeout still redelivers its task).
                if beat is not None and now - beat_at > settings.heartbeat_timeout_s:
                    lost = result
                    if resend is None:
                        raise CeleryTaskFailedError(
                            name, lost.id, RuntimeError("worker lost: heartbeat stopped")
                        )
                    log.warning(
                        "Celery task %s (%s): no heartbeat for %.0f s (its worker died?): "
                        "sending it again",
                        name,
                        lost.id,
                        now - beat_at,
                    )
                    _forget(lost)
                    lost.revoke()  # a live worker that still holds it drops it
                    result = resend()
                    started_at, beat, queued_since = None, None, now
                    continue
                if now - started_at > settings.task_deadline_s:
                    result.revoke(terminate=True, signal="SIGTERM")
                    raise TaskDeadlineError(name, result.id, queue, settings.task_deadline_s)
            elif now - max(queued_since, _consumed.get(queue, -1e9)) > settings.worker_wait_s:
                # Still queued and no sign of life from the queue's workers for a while (a busy
                # solo-pool worker answers no broadcast, but its task's heartbeats count): is
                # anything still consuming the queue?
                ensure_worker(queue)
                queued_since = now
            time.sleep(POLL_S)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # Ctrl-C, a Prefect cancel's SIGTERM, exit
            result.revoke(terminate=True, signal="SIGTERM")
        raise
    finally:
        _forget(result)


def _forget(result: Any) -> None:
    with _in_flight_lock:
        _in_flight.pop(result.id, None)


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a task only when it failed on a transient error.

    A Celery task that failed on its worker (:class:`CeleryTaskFailedError`) is final: the
    worker already retried it.
    """
    try:
        state.result(raise_on_failure=True)
    except CeleryTaskFailedError:
        return False
    except Exception as exc:  # noqa: BLE001 - classifying
        return is_transient(exc)
    return False


def transient_retries(*delays_s: float) -> dict[str, Any]:
    """Prefect ``@task`` options: one retry per delay (seconds), on transient errors only."""
    return {
        "retries": len(delays_s),
        "retry_delay_seconds": list(delays_s),
        "retry_condition_fn": transient_only,
    }


def table_artifact(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """Publish rows as a Prefect table artifact (key: lowercase letters, digits, dashes).

    Floats keep 6 significant digits (not 6 decimals: a saliency of 1e-7 stays 1e-7).
    """
    clean = [
        {k: (round_significant(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
        for r in rows
    ]
    create_table_artifact(key=key, table=clean, description=description)


def image_markdown(path: Path, title: str) -> str:
    """Return markdown embedding a PNG (base64), so the Prefect UI shows the plot itself."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"### {title}\n\n![{title}](data:image/png;base64,{data})\n"


def markdown_artifact(key: str, markdown: str, description: str) -> None:
    """Publish a markdown artifact."""
    create_markdown_artifact(key=key, markdown=markdown, description=description)
