"""Celery configuration: reliability settings, routing, eager default, GPU discovery."""

from __future__ import annotations

import pytest

from cli.commands.worker import gpu_ids
from services.celery_app import QUEUES, TASK_ROUTES, make_celery
from services.settings import Settings


def test_reliability_settings() -> None:
    app = make_celery(Settings(broker_url="redis://127.0.0.1:6379/9", visibility_timeout_s=7200))
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_max_tasks_per_child == 50
    assert conf.broker_transport_options["visibility_timeout"] == 7200
    assert not conf.task_always_eager
    assert conf.result_backend == "redis://127.0.0.1:6379/9"


def test_no_broker_means_eager() -> None:
    app = make_celery(Settings(broker_url=None))
    assert app.conf.task_always_eager and app.conf.task_eager_propagates


def test_every_task_is_routed_to_a_known_queue() -> None:
    app = make_celery(Settings(broker_url=None))
    ours = {name for name in app.tasks if name.startswith("clustermass.")}
    assert ours == set(TASK_ROUTES)  # an unrouted task would wait forever on a default queue
    assert {r["queue"] for r in TASK_ROUTES.values()} <= set(QUEUES)
    gpu = {n for n, r in TASK_ROUTES.items() if r["queue"] == "gpu"}
    assert gpu == {"clustermass.train_fold", "clustermass.predict", "clustermass.attribute"}


def test_tasks_acknowledge_late_and_retry_transient_errors_only() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    app = make_celery(Settings(broker_url=None))
    task = app.tasks["clustermass.train_fold"]
    assert task.acks_late
    assert OperationalError in task.autoretry_for
    assert IntegrityError not in task.autoretry_for


@pytest.mark.parametrize(("visible", "expected"), [("0,1", ["0", "1"]), ("", []), ("-1", [])])
def test_gpu_ids_from_visible_devices(
    monkeypatch: pytest.MonkeyPatch, visible: str, expected: list[str]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert gpu_ids() == expected


def test_worker_refuses_to_start_without_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from services.settings import get_settings

    monkeypatch.delenv("CLUSTERMASS_BROKER_URL", raising=False)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["worker", "--queue", "gpu"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "CLUSTERMASS_BROKER_URL" in result.output


def test_in_eager_mode_a_task_raises_the_transient_error_itself_not_a_celery_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Celery cannot retry in-process: its autoretry would raise celery.exceptions.Retry at the
    # caller, which the Prefect retry condition must not have to unwrap. The caller owns retries.
    import psycopg.errors
    from celery.exceptions import Retry
    from sqlalchemy.exc import OperationalError

    from services.jobs import simulation
    from services.transient import is_transient

    calls: list[str] = []

    def lost(mock_dir, catalogue_name=None, progress=None):  # noqa: ANN001, ANN202
        calls.append(str(mock_dir))
        raise OperationalError("INSERT", {}, psycopg.errors.AdminShutdown("terminating"))

    monkeypatch.setattr(simulation, "ingest_mock_directory", lost)
    app = make_celery(Settings(broker_url=None))
    with pytest.raises(OperationalError) as info:
        app.tasks["clustermass.ingest_simulation"].apply_async(args=("/nowhere",))
    assert not isinstance(info.value, Retry) and is_transient(info.value)
    assert calls == ["/nowhere"]  # once: no hidden in-process retry loop


def test_a_celery_retry_is_classified_by_the_error_it_carries() -> None:
    import psycopg.errors
    from celery.exceptions import Retry
    from sqlalchemy.exc import OperationalError

    from services.transient import is_transient
    from survey.errors import CatalogueReadError

    lost = OperationalError("INSERT", {}, psycopg.errors.AdminShutdown("terminating"))
    assert is_transient(Retry(exc=lost))
    assert not is_transient(Retry(exc=CatalogueReadError("x.fits: truncated")))
    assert not is_transient(Retry())
