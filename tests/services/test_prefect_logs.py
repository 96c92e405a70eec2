"""``services.prefect_logs`` without a server: what a worker forwards, and when it does not.

The end-to-end test (a real worker's records in the flow run) is
``tests/flows/test_prefect_logs.py``.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from services import prefect_logs

IDS = {"flow_run_id": "0199a1b2-0000-7000-8000-000000000001", "task_run_id": None}


class _Sink:
    """Stands in for Prefect's API handler: records what would have been sent."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def flush(self) -> None:
        pass


def _record(msg: str = "fold 3 done") -> logging.LogRecord:
    return logging.LogRecord("services.jobs.training", logging.INFO, __file__, 1, msg, None, None)


def _handler_with_sink() -> tuple[prefect_logs.FlowRunLogHandler, _Sink]:
    handler = prefect_logs.FlowRunLogHandler()
    sink = _Sink()
    handler._api = sink
    return handler, sink


def test_the_header_of_a_task_sets_the_run_of_its_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefect_logs, "_api_configured", lambda: True)
    handler, sink = _handler_with_sink()
    task: Any = SimpleNamespace(request=SimpleNamespace(**{prefect_logs.HEADER: IDS}))
    prefect_logs._enter_task(task=task)
    try:
        handler.emit(_record())
    finally:
        prefect_logs._task_run_ids.set(None)
    assert [r.flow_run_id for r in sink.records] == [IDS["flow_run_id"]]  # type: ignore[attr-defined]


def test_a_worker_without_a_prefect_api_forwards_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PREFECT_API_URL on the worker: records stay local, no temporary server is started."""
    monkeypatch.setattr(prefect_logs, "_api_configured", lambda: False)
    handler, sink = _handler_with_sink()
    prefect_logs._task_run_ids.set(IDS)
    try:
        handler.emit(_record())
    finally:
        prefect_logs._task_run_ids.set(None)
    assert sink.records == []


def test_records_outside_any_run_are_left_alone() -> None:
    handler, sink = _handler_with_sink()
    task: Any = SimpleNamespace(request=SimpleNamespace())  # a message sent outside any flow
    prefect_logs._enter_task(task=task)
    handler.emit(_record())
    assert sink.records == [] and prefect_logs._task_run_ids.get() is None


def test_publishing_outside_a_run_adds_no_header() -> None:
    headers: dict[str, Any] = {}
    prefect_logs._add_run_header(headers=headers)
    assert prefect_logs.HEADER not in headers


def test_install_lowers_project_loggers_to_info_once() -> None:
    logger = logging.getLogger("services")
    before = (logger.level, list(logger.handlers))
    try:
        logger.setLevel(logging.WARNING)
        prefect_logs.install()
        prefect_logs.install()
        assert logger.level == logging.INFO
        assert sum(isinstance(h, prefect_logs.FlowRunLogHandler) for h in logger.handlers) == 1
    finally:
        logger.setLevel(before[0])
        logger.handlers[:] = before[1]
