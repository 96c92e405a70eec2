"""The Prefect ingestion flows (few tests: the harness takes ~13 s to start)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.conftest import create_database, drop_database
from tests.survey.conftest import make_catalogue, make_image, tiny_spec


@pytest.fixture
def flow_env(
    admin_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[sa.Engine]:
    """Settings pointing at a private migrated database (the flows commit)."""
    from db import migrate
    from services.settings import get_settings

    url = create_database(admin_url, "cmflows")
    migrate.upgrade(url, "head")
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", url)
    monkeypatch.setenv("CLUSTERMASS_DATA_DIR", str(tmp_path / "store"))
    get_settings.cache_clear()
    eng = sa.create_engine(url)
    yield eng
    eng.dispose()
    get_settings.cache_clear()
    from services.database import _engine_for

    _engine_for(url).dispose()
    drop_database(admin_url, url)


def test_ingest_survey_flow_and_inbox(prefect_harness: None, flow_env: sa.Engine,
                                      tmp_path: Path) -> None:  # fmt: skip
    import yaml
    from prefect.client.orchestration import get_client

    from flows.ingest_survey import ingest_inbox, ingest_survey

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec("flowcat").model_dump(mode="json")))
    m = np.full(20, 1.0)
    m[1] = -1.0
    cat = make_catalogue(tmp_path / "cat.fits", M500=m)
    out = ingest_survey(str(cat), str(spec))
    assert out["status"] == "partial" and out["n_rows"] == 19 and out["n_rejected"] == 1
    with flow_env.connect() as conn:
        assert conn.scalar(sa.text("select count(*) from clusters")) == 19

    async def artifact() -> str:
        async with get_client() as client:
            arts = await client.read_artifacts()
        return next(a.data for a in arts if a.key == "ingest-survey" and a.type == "markdown")

    import asyncio

    md = asyncio.run(artifact())
    assert "cat.fits" in md and "| 19 | 1 |" in md and "row 2 column 'M500'" in md
    # inbox: the same file again (no-op), a bare image (refused), a spec drop (ingested)
    img = make_image(tmp_path / "img.fits", np.ones((8, 8)))
    drop = tmp_path / "drop.yaml"
    drop.write_text(spec.read_text().replace("flowcat", "flowcat2") + "file: cat2.fits\n")
    make_catalogue(tmp_path / "cat2.fits", seed=3)
    res = ingest_inbox([str(cat), str(img), str(drop)])
    assert [r["status"] for r in res] == ["skipped", "rejected", "ingested"]


def test_db_tasks_retry_only_transient_errors(prefect_harness: None) -> None:
    from prefect import flow, task

    from flows._common import transient_only
    from survey.errors import CatalogueReadError

    calls = {"transient": 0, "bad": 0}

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=transient_only)
    def flaky(kind: str) -> str:
        calls[kind] += 1
        if kind == "transient" and calls[kind] < 3:
            raise OperationalError("select 1", {}, Exception("server closed the connection"))
        if kind == "bad":
            raise CatalogueReadError("x.fits: truncated FITS file")
        return "ok"

    @flow
    def run(kind: str) -> str:
        return flaky(kind)

    assert run("transient") == "ok" and calls["transient"] == 3
    with pytest.raises(CatalogueReadError):
        run("bad")
    assert calls["bad"] == 1


def test_transient_errors_are_retried_others_not() -> None:
    from db.errors import DatabaseUnavailableError
    from services.transient import is_transient
    from survey.errors import CatalogueReadError

    assert is_transient(OperationalError("select 1", {}, Exception("server closed")))
    assert is_transient(DatabaseUnavailableError("down"))
    assert not is_transient(CatalogueReadError("x.fits: truncated"))
