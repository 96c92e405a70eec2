"""The inbox watcher behind `clustermass serve`, and the deployments it serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from flows.serve import build_deployments, inbox_files
from tests.conftest import service_environment
from tests.survey.conftest import make_catalogue, tiny_spec


def test_inbox_files_skip_hidden_and_partial(tmp_path: Path) -> None:
    (tmp_path / "a.fits").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.csv").write_text("x")
    (tmp_path / ".hidden.fits").write_bytes(b"x")
    (tmp_path / "c.fits.part").write_bytes(b"x")
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "d.fits").write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in inbox_files(tmp_path)] == [
        "a.fits",
        "sub/b.csv",
    ]
    assert inbox_files(tmp_path / "absent") == []


def test_deployments_schedule_the_inbox(tmp_path: Path) -> None:
    deployments = {d.name: d for d in build_deployments(tmp_path, inbox_interval_s=300)}
    inbox = deployments["inbox"]
    assert inbox.parameters == {"inbox": str(tmp_path)}
    kinds = sorted(type(s.schedule).__name__ for s in inbox.schedules)
    assert kinds == ["CronSchedule", "IntervalSchedule"]
    flows = {d.flow_name for d in deployments.values()} | {
        d.flow_name for d in build_deployments(None)
    }
    assert {
        "watch-inbox",
        "ingest-simulation",
        "train-models",
        "resume-run",
        "predict",
        "attribute",
        "report",
    } <= flows


@pytest.fixture
def eager_env(admin_url: str, tmp_path: Path) -> Iterator[str]:
    with service_environment(admin_url, tmp_path / "store", prefix="cmserve") as url:
        yield url


def test_watch_inbox_ingests_each_file_once(
    prefect_harness: None, eager_env: str, tmp_path: Path
) -> None:
    from flows.serve import watch_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    make_catalogue(inbox / "tiny.fits", n=12)
    doc = {**tiny_spec().model_dump(mode="json"), "kind": "catalogue", "file": "tiny.fits"}
    (inbox / "tiny.yaml").write_text(yaml.safe_dump(doc))

    first = watch_inbox(str(inbox))
    assert [r["status"] for r in first] == ["ingested"]  # the FITS goes in through its YAML
    engine = sa.create_engine(eager_env)
    with engine.connect() as conn:
        n_clusters = conn.scalar(sa.text("SELECT count(*) FROM clusters"))
    second = watch_inbox(str(inbox))
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM clusters")) == n_clusters == 12
    engine.dispose()
    assert [r["status"] for r in second] == ["skipped"]
