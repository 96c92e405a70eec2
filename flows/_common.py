"""Shared flow plumbing: submit Celery tasks and wait, retry only transient errors, artifacts."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from astro.numbers import round_significant
from services.celery_app import get_celery
from services.transient import is_transient

__all__ = [
    "CeleryTaskFailedError",
    "run_celery",
    "wait_celery",
    "submit_celery",
    "transient_only",
    "transient_retries",
    "table_artifact",
    "image_markdown",
]


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


def submit_celery(name: str, *args: Any, **kwargs: Any):  # noqa: ANN201 - celery AsyncResult
    """Submit the Celery task ``name`` (routed to its queue); eager mode runs it here and now."""
    app = get_celery()
    return app.tasks[name].apply_async(args=args, kwargs=kwargs)


def run_celery(name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """Submit the Celery task ``name`` and wait for its result (see :func:`wait_celery`)."""
    return wait_celery(name, submit_celery(name, *args, **kwargs), timeout=timeout)


def wait_celery(name: str, result: Any, *, timeout: float | None = None) -> Any:
    """Wait for a submitted Celery task; return its value or raise its error.

    In eager mode the task's own error has already propagated from :func:`submit_celery` (the
    Prefect task around it retries it when transient). On a worker, a task that failed on a
    transient error raises :class:`CeleryTaskFailedError`: the worker has already retried it.
    Its other errors, and errors reaching the broker or the result backend, propagate as they
    are (the latter are transient: the Prefect task retries them).
    """
    value = result.get(timeout=timeout, propagate=False, disable_sync_subtasks=False)
    if result.failed():
        if isinstance(value, BaseException) and not is_transient(value):
            raise value
        error = value if isinstance(value, BaseException) else RuntimeError(str(value))
        raise CeleryTaskFailedError(name, result.id, error) from error
    return value


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
