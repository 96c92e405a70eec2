"""Celery tasks: thin wrappers that take ids and plain values and call :mod:`services.jobs`.

Every task is idempotent (its job upserts on natural keys) and retries only transient
infrastructure errors, with exponential back-off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import shared_task

from services.transient import TRANSIENT_ERRORS

_RETRY = dict(
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)


@shared_task(name="clustermass.generate_mock", **_RETRY)
def generate_mock(config: dict[str, Any], out_dir: str) -> str:
    """Generate a mock catalogue into ``out_dir`` (reused if it already matches ``config``)."""
    from services.jobs.simulation import generate_mock as job

    return str(job(config, Path(out_dir)))


@shared_task(name="clustermass.ingest_simulation", **_RETRY)
def ingest_simulation(mock_dir: str, catalogue_name: str | None = None) -> dict[str, Any]:
    """Ingest a mock directory; return the row counts."""
    from services.jobs.simulation import ingest_mock_directory

    return ingest_mock_directory(Path(mock_dir), catalogue_name=catalogue_name).as_dict()


@shared_task(name="clustermass.ingest_survey_file", **_RETRY)
def ingest_survey_file(path: str) -> dict[str, Any]:
    """Ingest one survey file (catalogue, image-set or galaxy manifest), idempotent by checksum."""
    from dataclasses import asdict

    from flows.ingest import ingest_path

    return asdict(ingest_path(path))
