"""Celery task logs in the Prefect flow run that sent the task.

A flow hands its work to Celery tasks; without this module their log records stay in the
worker's own log. Here:

* the sending process (a Prefect flow, any task run) adds the ids of its current Prefect flow
  run and task run to every Celery message it publishes (header :data:`HEADER`, Celery signal
  ``before_task_publish``);
* in the worker, ``task_prerun`` reads them back, and :class:`FlowRunLogHandler` (on the
  project's loggers, :data:`PROJECT_LOGGERS`, at INFO) sends every record emitted while the task
  runs to the Prefect API for that flow run and task run; ``task_postrun`` flushes them;
* in eager mode (no broker: the task runs inside the Prefect task run, in the same thread) the
  handler takes the ids from Prefect's run context instead.

A worker forwards only when a Prefect API is configured (``PREFECT_API_URL``): it never starts
Prefect's temporary server of its own. Records outside any run are left alone (no warning).
Prefect is imported only when a record is forwarded or a message is sent from inside a run.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
)

__all__ = [
    "HEADER",
    "PROJECT_LOGGERS",
    "FlowRunLogHandler",
    "current_run_ids",
    "install",
]

#: Celery message header carrying ``{"flow_run_id": ..., "task_run_id": ...}``.
HEADER = "clustermass_prefect"

#: Loggers whose records are forwarded (the project's packages).
PROJECT_LOGGERS = ("services", "flows", "db", "models", "mocks", "survey", "astro")

#: Ids of the Prefect run the Celery task running in this context belongs to (from its header).
_task_run_ids: ContextVar[dict[str, str] | None] = ContextVar("clustermass_prefect", default=None)


def current_run_ids() -> dict[str, str] | None:
    """Ids of the Prefect flow run (and task run) this code runs in, or None outside any run.

    Returns ``{"flow_run_id": str, "task_run_id": str | None}``. Prefect is not imported: a
    process that has not loaded it cannot be inside a run.
    """
    if "prefect.context" not in sys.modules:
        return None
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    if task_ctx is not None and task_ctx.task_run is not None:
        task_run = task_ctx.task_run
        if task_run.flow_run_id is not None:
            return {"flow_run_id": str(task_run.flow_run_id), "task_run_id": str(task_run.id)}
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return {"flow_run_id": str(flow_ctx.flow_run.id), "task_run_id": None}
    return None


def _api_configured() -> bool:
    # lazy: Prefect loads only in a process that forwards a record
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


class FlowRunLogHandler(logging.Handler):
    """Send records emitted inside a Celery task of a Prefect flow to that flow run's logs.

    The ids come from the task's message header (a worker) or from Prefect's run context (eager
    mode, or project code called directly from a flow). Records outside any run are dropped by
    this handler only (other handlers still see them).
    """

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._api: Any = None

    def _api_handler(self) -> Any:
        if self._api is None:
            # lazy: Prefect loads only in a process that forwards a record
            from prefect.logging.handlers import APILogHandler

            self._api = APILogHandler()
            self._api.setFormatter(self.formatter)
        return self._api

    def emit(self, record: logging.LogRecord) -> None:
        """Attach the run ids to ``record`` and hand it to Prefect's batched API log sender."""
        ids = _task_run_ids.get()
        if ids is None:
            ids = current_run_ids()
            if ids is None:
                return
        elif not _api_configured():
            return
        try:
            record.flow_run_id = ids["flow_run_id"]
            record.task_run_id = ids.get("task_run_id")
            self._api_handler().emit(record)
        except Exception:  # noqa: BLE001 - a log record must never fail the task
            self.handleError(record)

    def flush(self) -> None:
        """Block (at most 5 s) until the records sent so far reached the Prefect API."""
        if self._api is not None:
            self._api.flush()


_handler = FlowRunLogHandler()


def install(level: int = logging.INFO) -> FlowRunLogHandler:
    """Attach the forwarding handler to :data:`PROJECT_LOGGERS` (idempotent).

    Loggers quieter than ``level`` are lowered to it, so INFO records are emitted; what a
    terminal shows stays decided by the terminal's own handler level.
    """
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
    return _handler


@before_task_publish.connect
def _add_run_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Put the sender's Prefect run ids into the message (only when sent from inside a run)."""
    ids = current_run_ids()
    if ids is not None and headers is not None:
        headers[HEADER] = ids


@task_prerun.connect
def _enter_task(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    ids = getattr(request, HEADER, None) if request is not None else None
    if isinstance(ids, dict) and ids.get("flow_run_id"):
        _task_run_ids.set(
            {"flow_run_id": ids["flow_run_id"], "task_run_id": ids.get("task_run_id")}
        )
    else:
        _task_run_ids.set(None)


@task_postrun.connect
def _leave_task(**_: Any) -> None:
    if _task_run_ids.get() is not None:
        try:
            _handler.flush()
        finally:
            _task_run_ids.set(None)


@worker_init.connect
@worker_process_init.connect
def _install_in_worker(**_: Any) -> None:
    install()
