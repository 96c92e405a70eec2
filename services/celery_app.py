"""The Celery application: two queues, late acknowledgement, one task at a time per process.

* ``cpu`` queue: ingestion, baselines, reports. ``gpu`` queue: training folds, prediction,
  attribution (one worker process per GPU; CUDA is first touched inside the child process).
* Tasks are acknowledged after they finish (``acks_late``) and requeued if their worker's pool
  process dies (``task_reject_on_worker_lost``); with the Redis broker an unacknowledged message
  comes back after ``visibility_timeout`` (``CLUSTERMASS_VISIBILITY_TIMEOUT_S``, one value for
  the whole broker: it must exceed the longest job, a full training fold, or a slow task is
  handed out twice). A worker that dies as a whole is detected sooner by the heartbeat of its
  running task (``services.progress``): the flow waiting for it sends the task again after
  ``CLUSTERMASS_HEARTBEAT_TIMEOUT_S``. Every task is idempotent (upserts keyed by natural keys),
  so a redelivered task writes nothing twice.
* Workers answer remote control (``inspect active_queues``): :func:`queue_consumers` tells a
  flow, before it sends a task, whether anything consumes the task's queue.
* A worker stopped with a cold shutdown (SIGQUIT, or SIGTERM when ``REMAP_SIGTERM=SIGQUIT``)
  lets running tasks finish for ``worker_soft_shutdown_s``, then cancels them; closing its
  broker channel puts their unacknowledged messages back on the queue at once (no visibility
  timeout to wait for).
* Task events are on (``worker_send_task_events``, ``task_send_sent_event``): Flower and
  ``celery events`` see every task from the moment it is sent (README, "Workers and the
  dashboard").
* A task's log records reach the Prefect flow run that sent it (:mod:`services.prefect_logs`,
  whose Celery signal handlers are connected by importing it here).
* With no broker configured (``CLUSTERMASS_BROKER_URL`` unset) tasks run eagerly in-process:
  the embedded default for ``clustermass demo``.
"""

from __future__ import annotations

import os
from functools import lru_cache

from celery import Celery
from celery.signals import worker_process_init
from celery.worker.control import inspect_command
from kombu import Queue

import services.prefect_logs  # noqa: F401 - connects the signal handlers forwarding task logs
from services.settings import Settings, get_settings

__all__ = [
    "make_celery",
    "get_celery",
    "QUEUES",
    "TASK_ROUTES",
    "task_queue",
    "queue_consumers",
    "worker_devices",
]

QUEUES = ("cpu", "gpu")

TASK_ROUTES = {
    "clustermass.generate_mock": {"queue": "cpu"},
    "clustermass.ingest_simulation": {"queue": "cpu"},
    "clustermass.ingest_survey_file": {"queue": "cpu"},
    "clustermass.report": {"queue": "cpu"},
    "clustermass.create_run": {"queue": "cpu"},
    "clustermass.finalize_run": {"queue": "cpu"},
    "clustermass.train_fold": {"queue": "gpu"},
    "clustermass.predict": {"queue": "gpu"},
    "clustermass.attribute": {"queue": "gpu"},
}


def make_celery(settings: Settings | None = None) -> Celery:
    """Build the Celery app from settings (broker, backend, eager mode, reliability options)."""
    settings = settings or get_settings()
    eager = settings.celery_eager
    app = Celery("clustermass")
    app.conf.update(
        broker_url=settings.broker_url or "memory://localhost/",
        result_backend=settings.result_backend or settings.broker_url or "cache+memory://",
        task_always_eager=eager,
        task_eager_propagates=True,
        task_store_eager_result=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_queues=[Queue(q, routing_key=q) for q in QUEUES],
        task_default_queue="cpu",
        task_routes=TASK_ROUTES,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_track_started=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
        worker_hijack_root_logger=False,
        # cold shutdown (SIGQUIT; SIGTERM with REMAP_SIGTERM=SIGQUIT, as compose.yaml sets):
        # running tasks get this long, then are cancelled and requeued at once
        worker_soft_shutdown_timeout=settings.worker_soft_shutdown_s,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
    )
    app.set_default()
    app.autodiscover_tasks(["services"], related_name="tasks", force=True)
    return app


def task_queue(name: str) -> str:
    """Return the queue a task is routed to (``cpu`` unless :data:`TASK_ROUTES` says otherwise)."""
    return TASK_ROUTES.get(name, {}).get("queue", "cpu")


def queue_consumers(queue: str, *, timeout_s: float = 1.0, app: Celery | None = None) -> list[str]:
    """Names of the live workers that consume ``queue`` (asked by broadcast, ``timeout_s``).

    Errors reaching the broker propagate (transient: the caller's retries handle them).
    """
    app = app or get_celery()
    replies = app.control.inspect(timeout=timeout_s).active_queues() or {}
    return sorted(
        worker
        for worker, queues in replies.items()
        if any(q.get("name") == queue for q in queues or [])
    )


@lru_cache(maxsize=1)
def get_celery() -> Celery:
    """Return the process-wide Celery app (rebuilt after ``get_settings.cache_clear()``)."""
    return make_celery()


@worker_process_init.connect
def _pin_gpu(**_: object) -> None:
    """Give each prefork child of a gpu worker its own GPU (concurrency = number of GPUs).

    Runs in the child after fork and before any task, so the parent never initialises CUDA.
    """
    if os.environ.get("CLUSTERMASS_WORKER_QUEUE") != "gpu":
        return
    visible = os.environ.get("CLUSTERMASS_GPU_IDS")
    if not visible:
        return
    from billiard.process import current_process

    ids = visible.split(",")
    index = getattr(current_process(), "index", 0) or 0
    os.environ["CUDA_VISIBLE_DEVICES"] = ids[index % len(ids)]


def worker_devices(queue: str | None, gpu_ids: str | None) -> list[str]:
    """Return a worker's devices: ``cuda:<id>`` per GPU of a gpu worker, else ``cpu``."""
    if queue == "gpu" and gpu_ids:
        return [f"cuda:{i}" for i in gpu_ids.split(",") if i.strip()]
    return ["cpu"]


@inspect_command()
def clustermass_info(state: object) -> dict[str, object]:
    """Remote ``inspect``: the queues a worker consumes, its devices, pool size and busy slots.

    One broadcast answers ``clustermass status`` (``services.ops_status``) for every worker.
    """
    # lazy: worker internals, only inside a worker
    from celery.worker import state as worker_state

    consumer = state.consumer  # type: ignore[attr-defined]
    queues = [q.name for q in consumer.task_consumer.queues] if consumer.task_consumer else []
    pool = getattr(consumer, "pool", None)
    info = pool.info if pool is not None else {}
    return {
        "queues": queues,
        "devices": worker_devices(
            os.environ.get("CLUSTERMASS_WORKER_QUEUE"), os.environ.get("CLUSTERMASS_GPU_IDS")
        ),
        "concurrency": info.get("max-concurrency"),
        "active": len(worker_state.active_requests),
        "pid": os.getpid(),
    }


def __getattr__(name: str) -> Celery:
    """``celery -A services.celery_app`` finds ``app`` here, built on first access (PEP 562)."""
    if name == "app":
        return get_celery()
    raise AttributeError(name)
