"""One layer retries: a Celery task that failed on its worker is not retried again by its flow."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError


def test_a_task_that_failed_on_its_worker_is_final_for_the_flow(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a worker, Celery has already retried a transient error (with back-off) before the
    # task fails: a Prefect retry on top would multiply the attempts (3 x 6 for ingest-mock).
    from celery import states
    from celery.result import EagerResult
    from prefect import flow, task

    import flows._common as common

    submitted: list[str] = []

    def failed_on_worker(name: str, *args: object, **kwargs: object) -> EagerResult:
        submitted.append(name)
        lost = OperationalError("INSERT", {}, Exception("server closed the connection"))
        return EagerResult("task-1", lost, states.FAILURE, name=name)

    monkeypatch.setattr(common, "submit_celery", failed_on_worker)

    @task(**common.transient_retries(0, 0))
    def ingest() -> object:
        return common.run_celery("clustermass.ingest_simulation", "/mock")

    @flow
    def run() -> object:
        return ingest()

    with pytest.raises(common.CeleryTaskFailedError, match="clustermass.ingest_simulation"):
        run()
    assert submitted == ["clustermass.ingest_simulation"]


def test_a_non_transient_worker_error_keeps_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI shows a user's error (bad file, unknown catalogue) by its type, worker or not.
    from celery import states
    from celery.result import EagerResult

    import flows._common as common
    from survey.errors import CatalogueReadError

    bad = CatalogueReadError("x.fits: truncated FITS file")
    monkeypatch.setattr(
        common, "submit_celery", lambda name, *a, **k: EagerResult("t", bad, states.FAILURE)
    )
    with pytest.raises(CatalogueReadError, match="truncated"):
        common.run_celery("clustermass.ingest_survey_file", "x.fits")
