"""What the system is doing, for ``clustermass status``: data, runs, queues, workers, Prefect.

Each part is gathered on its own and reports its own failure: a database or broker that does
not answer is a line of the status, not an error of the command.

* database: catalogues (kind, clusters) and the newest training runs with their states;
* broker: the depth of the ``cpu`` and ``gpu`` queues (messages waiting, not yet taken by a
  worker) and the live workers (one ``inspect`` broadcast, ``clustermass_info`` in
  :mod:`services.celery_app`): their queues, devices, pool size and busy slots. Without a
  broker (``CLUSTERMASS_BROKER_URL`` unset) tasks run in-process: there is no queue to show;
* Prefect: the configured API URL, or Prefect's temporary per-command server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from db.overview import CatalogueRow, RunRow, catalogue_rows, run_rows
from db.session import read_only_session, redact, scrub
from services.celery_app import QUEUES, get_celery
from services.database import ready_engine
from services.settings import Settings, get_settings

__all__ = ["WorkerInfo", "SystemStatus", "system_status", "queue_depths", "live_workers"]


@dataclass(frozen=True)
class WorkerInfo:
    """A live Celery worker: node name, queues, devices, pool size, tasks running now."""

    name: str
    queues: list[str]
    devices: list[str]
    concurrency: int | None
    active: int


@dataclass
class SystemStatus:
    """Everything ``clustermass status`` shows; an ``*_error`` says why a part is missing."""

    database: str
    catalogues: list[CatalogueRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    database_error: str | None = None
    broker: str | None = None
    queues: dict[str, int] = field(default_factory=dict)
    workers: list[WorkerInfo] = field(default_factory=list)
    broker_error: str | None = None
    prefect_api: str | None = None


def queue_depths(app: Any = None, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Messages waiting in each queue (Redis: every priority list of the queue, summed).

    A queue the broker has never seen holds 0 messages.
    """
    # lazy: kombu's error type, only where the broker is asked
    from kombu.exceptions import ChannelError

    app = app or get_celery()
    depths = {}
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        channel = conn.default_channel
        for name in queues:
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except ChannelError:
                depths[name] = 0
    return depths


def live_workers(app: Any = None, timeout_s: float = 1.5) -> list[WorkerInfo]:
    """Workers that answer an ``inspect`` broadcast within ``timeout_s``, by name."""
    app = app or get_celery()
    replies = app.control.inspect(timeout=timeout_s)._request("clustermass_info") or {}
    workers = []
    for name, info in sorted(replies.items()):
        if not isinstance(info, dict) or "queues" not in info:  # a worker of an older version
            info = {"queues": [], "devices": [], "concurrency": None, "active": 0}
        workers.append(
            WorkerInfo(
                name=name,
                queues=list(info["queues"]),
                devices=list(info.get("devices") or []),
                concurrency=info.get("concurrency"),
                active=int(info.get("active") or 0),
            )
        )
    return workers


def _prefect_api() -> str | None:
    # lazy: Prefect loads only for this look-up
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def system_status(
    settings: Settings | None = None, *, run_limit: int = 20, worker_timeout_s: float = 1.5
) -> SystemStatus:
    """Gather the status of the database, the broker and its workers, and Prefect."""
    settings = settings or get_settings()
    # lazy: the embedded server's URL only when no server is configured
    from services.database import database_url

    url = settings.database_url or "embedded PostgreSQL"
    status = SystemStatus(database=redact(url) if settings.database_url else url)
    try:
        url = database_url(settings)  # starts the embedded server when none is configured
        engine = ready_engine(settings)
        # the owner's own rights (not the reader role: it sees no base table), read only
        with read_only_session(engine, assume_role=None) as session:
            status.catalogues = catalogue_rows(session)
            status.runs = run_rows(session, run_limit)
    except Exception as exc:  # noqa: BLE001 - reported as the database's status
        status.database_error = scrub(f"{type(exc).__name__}: {exc}".splitlines()[0], url)
    if settings.broker_url:
        status.broker = redact(settings.broker_url)
        try:
            app = get_celery()
            status.queues = queue_depths(app)
            status.workers = live_workers(app, worker_timeout_s)
        except Exception as exc:  # noqa: BLE001 - reported as the broker's status
            status.broker_error = scrub(
                f"{type(exc).__name__}: {exc}".splitlines()[0], settings.broker_url
            )
    status.prefect_api = _prefect_api()
    return status
