"""Celery tasks: thin wrappers that take ids and plain values and call :mod:`services.jobs`.

Every task is idempotent (its job upserts on natural keys) and retries only transient
infrastructure errors, with exponential back-off. Exactly one layer retries:

* on a worker, Celery retries (the message is re-queued with a countdown); the flow that waits
  for it sees only the final outcome and does not retry it again (``flows._common.run_celery``);
* in eager mode (no broker: the CLI's default), Celery cannot retry in-process (its retry would
  only raise ``celery.exceptions.Retry`` at the caller), so :class:`RetryingTask` re-raises the
  transient error itself and the Prefect task around it retries with its own delays.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from services.jobs.params import AttributeParams
from services.progress import reporting
from services.settings import get_settings
from services.transient import TRANSIENT_ERRORS, is_transient

__all__ = ["RetryingTask"]


class RetryingTask(Task):
    """A task whose automatic retries happen on workers only, and only for transient errors.

    On a worker every run heartbeats (``services.progress``): the flow waiting for it sends it
    again when the heartbeat stops (its worker died).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task inside its heartbeat (on a worker; in eager mode nothing is written)."""
        with reporting(self, get_settings().heartbeat_s):
            return super().__call__(*args, **kwargs)

    def retry(  # type: ignore[override]
        self, args: Any = None, kwargs: Any = None, exc: BaseException | None = None,
        throw: bool = True, eta: Any = None, countdown: float | None = None,
        max_retries: int | None = None, **options: Any,
    ) -> Any:  # fmt: skip
        """Retry on a worker; in eager mode, or for an error retrying cannot fix, raise ``exc``.

        ``autoretry_for`` catches whole exception types (every ``OperationalError``); the
        SQLSTATE decides whether it is really transient (:func:`services.transient.is_transient`).
        In eager mode the caller (a Prefect task with ``transient_retries``) owns the retries, so
        it must see the error itself, not a ``celery.exceptions.Retry`` wrapping it.
        """
        if exc is not None and (self.request.is_eager or not is_transient(exc)):
            raise exc
        return super().retry(
            args=args, kwargs=kwargs, exc=exc, throw=throw, eta=eta, countdown=countdown,
            max_retries=max_retries, **options,
        )  # fmt: skip


_RETRY = dict(
    base=RetryingTask,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)


@shared_task(name="clustermass.generate_mock", bind=True, **_RETRY)
def generate_mock(self: Task, config: dict[str, Any], out_dir: str) -> str:
    """Generate a mock catalogue into ``out_dir`` (reused if it already matches ``config``).

    Reports ``{"kind": "mock", "done", "total"}`` (clusters generated) as it goes.
    """
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.simulation import generate_mock as job

    total = config.get("n_clusters")
    with reporting(self, get_settings().heartbeat_s) as report:

        def progress(done: int) -> None:
            report({"kind": "mock", "done": done, "total": total, "final": done == total})

        return str(job(config, Path(out_dir), progress=progress))


@shared_task(name="clustermass.ingest_simulation", bind=True, **_RETRY)
def ingest_simulation(
    self: Task, mock_dir: str, catalogue_name: str | None = None
) -> dict[str, Any]:
    """Ingest a mock directory; return the row counts.

    Reports ``{"kind": "ingest", "done", "total"}`` (cluster maps stored) as it goes.
    """
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.simulation import ingest_mock_directory

    with reporting(self, get_settings().heartbeat_s) as report:

        def progress(done: int, total: int) -> None:
            report({"kind": "ingest", "done": done, "total": total, "final": done == total})

        summary = ingest_mock_directory(
            Path(mock_dir), catalogue_name=catalogue_name, progress=progress
        )
        return summary.as_dict()


@shared_task(name="clustermass.ingest_survey_file", **_RETRY)
def ingest_survey_file(path: str) -> dict[str, Any]:
    """Ingest one survey file (catalogue, image-set or galaxy manifest), idempotent by checksum."""
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.ingest_inbox import ingest_path

    return asdict(ingest_path(path))


@shared_task(name="clustermass.create_run", **_RETRY)
def create_run(catalogue_id: int, config: dict[str, Any], name: str | None = None) -> dict:
    """Create (or find) a training run; return its id and folds."""
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.training import create_run as job

    run_id, folds = job(catalogue_id, config, name=name)
    return {"run_id": run_id, "folds": folds}


@shared_task(name="clustermass.train_fold", bind=True, **_RETRY)
def train_fold(self: Task, run_id: int, fold: int) -> dict[str, Any]:
    """Train one cross-validation fold of a run (skipped if already done).

    Reports ``{fold, epoch, epochs, loss, val_loss}`` progress with heartbeats
    (:class:`services.progress.TaskReporter`); stops at its next step once the run is cancelled.
    """
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.training import progress_meta, run_cancelled, train_fold_job

    heartbeat_s = get_settings().heartbeat_s
    with reporting(self, heartbeat_s, should_stop=lambda: run_cancelled(run_id)) as report:
        result = train_fold_job(run_id, fold, progress=lambda p: report(progress_meta(p)))
    result.pop("members", None)  # per-epoch histories stay in the database
    return result


@shared_task(name="clustermass.finalize_run", **_RETRY)
def finalize_run(run_id: int) -> dict[str, Any]:
    """Compute a run's metrics from its predictions; mark it done when every fold is."""
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.training import finalize_run as job

    return job(run_id)


@shared_task(name="clustermass.predict", bind=True, **_RETRY)
def predict(self: Task, run_id: int, catalogue_id: int) -> dict[str, Any]:
    """Predict the clusters of a catalogue that have no prediction from this run yet."""
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.predict import predict_job

    with reporting(self, get_settings().heartbeat_s) as report:

        def progress(done: int, total: int) -> None:
            report({"kind": "predict", "done": done, "total": total, "final": done == total})

        return predict_job(run_id, catalogue_id, progress=progress).as_dict()


@shared_task(name="clustermass.attribute", bind=True, **_RETRY)
def attribute(self: Task, params: dict[str, Any]) -> dict[str, Any]:
    """Saliency (and friends) of a run's clusters, stored per cluster and summarised.

    ``params`` is :class:`services.jobs.params.AttributeParams` as JSON.
    """
    # lazy: torch loads only where it runs
    from services.jobs.attribute import attribute_job

    with reporting(self, get_settings().heartbeat_s) as report:

        def progress(done: int, total: int) -> None:
            report({"kind": "attribute", "done": done, "total": total, "final": done == total})

        return attribute_job(AttributeParams.model_validate(params), progress=progress)


@shared_task(name="clustermass.report", **_RETRY)
def report(
    catalogue_id: int,
    run_ids: list[int] | None = None,
    n_boot: int = 1000,
    predicted_only: bool = False,
) -> dict:
    """Benchmark table, scatter by mass and redshift bin, bootstrap intervals, figures."""
    # lazy: the job's science (torch) loads only where the task runs
    from services.jobs.report import report_job

    return report_job(catalogue_id, run_ids=run_ids, n_boot=n_boot, predicted_only=predicted_only)
