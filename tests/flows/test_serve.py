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
    # the watcher's batches: a table named by a manifest goes in through that manifest ...
    via_manifest = watch_inbox(str(inbox), [str(inbox / "tiny.fits")])
    assert [(Path(r["path"]).name, r["status"]) for r in via_manifest] == [("tiny.fits", "skipped")]
    # ... and a batch examines only its own files
    (inbox / "notes.txt").write_text("not a table")
    assert [Path(r["path"]).name for r in watch_inbox(str(inbox), [str(inbox / "notes.txt")])] == [
        "notes.txt"
    ]


def test_a_growing_file_is_due_only_after_it_stays_quiet(tmp_path: Path) -> None:
    from services.inbox_watch import SettlingFiles

    now = [0.0]
    settling = SettlingFiles(2.0, clock=lambda: now[0])
    path = tmp_path / "cat.fits"
    path.write_bytes(b"x" * 100)
    settling.note(path)
    assert settling.due() == []  # first look: its quiet time starts now
    now[0] = 1.5
    with path.open("ab") as fh:  # the writer is still at it
        fh.write(b"y" * 100)
    assert settling.due() == []
    now[0] = 3.0  # 3 s since the first look, but only 1.5 s since it last grew
    assert settling.due() == []
    now[0] = 3.6
    assert settling.due() == [path] and len(settling) == 0
    gone = tmp_path / "gone.csv"
    gone.write_text("a")
    settling.note(gone)
    gone.unlink()
    now[0] = 10.0
    assert settling.due() == [] and len(settling) == 0  # a vanished file is forgotten


def test_a_complete_file_waits_for_the_files_copied_with_it(tmp_path: Path) -> None:
    from services.inbox_watch import SettlingFiles

    now = [0.0]
    settling = SettlingFiles(1.0, max_hold_s=5.0, clock=lambda: now[0])
    table, manifest = tmp_path / "t.fits", tmp_path / "t.yaml"
    table.write_bytes(b"x")
    settling.note(table)
    settling.due()
    now[0] = 0.9
    manifest.write_text("kind: catalogue")
    settling.note(manifest)
    settling.due()
    now[0] = 1.2  # the table is complete, the manifest is not yet: both wait
    assert settling.due() == []
    now[0] = 2.0
    assert settling.due() == [table, manifest]
    # a file that keeps changing holds the others back at most max_hold_s
    table.write_bytes(b"xx")
    settling.note(table)
    settling.due()
    busy = tmp_path / "busy.fits"
    busy.write_bytes(b"1")
    settling.note(busy)
    now[0] = 3.5
    settling.due()
    for step in range(1, 40):
        now[0] = 3.5 + step * 0.2
        busy.write_bytes(b"1" * (step + 1))
        if got := settling.due():
            break
    assert got == [table] and now[0] - 3.5 >= 5.0 - 1.0  # table settled at ~3.5 s, held ~5 s


def _drop_catalogue(inbox: Path, stem: str, n: int, seed: int) -> None:
    make_catalogue(inbox / f"{stem}.fits", n=n, seed=seed)
    doc = {
        **tiny_spec(name=stem).model_dump(mode="json"),
        "kind": "catalogue",
        "file": f"{stem}.fits",
    }
    (inbox / f"{stem}.yaml").write_text(yaml.safe_dump(doc))


def _n_clusters(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT count(*) FROM clusters"))
    finally:
        engine.dispose()


def _wait_for(url: str, n: int, timeout: float) -> float:
    """Seconds until the database holds ``n`` clusters (fails after ``timeout``)."""
    import time

    t0 = time.monotonic()
    while (got := _n_clusters(url)) != n:
        assert time.monotonic() - t0 < timeout, f"{got} clusters after {timeout} s, expected {n}"
        time.sleep(0.2)
    return time.monotonic() - t0


def test_inbox_watcher_ingests_a_dropped_file_within_10_s(
    prefect_harness: None, eager_env: str, tmp_path: Path
) -> None:
    """Acceptance (issue 16): a file already there is ingested by the start-up scan; a file
    dropped later is ingested within 10 s of being complete, and not while it is written."""
    import time

    from flows.serve import InboxWatcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _drop_catalogue(inbox, "early", n=12, seed=1)
    heartbeat = tmp_path / "hb" / "serve.heartbeat"
    watcher = InboxWatcher(inbox, settle_s=2.0, heartbeat=heartbeat).start()
    try:
        _wait_for(eager_env, 12, timeout=120)  # the start-up scan (Prefect's first flow run)
        assert heartbeat.is_file() and time.time() - heartbeat.stat().st_mtime < 60

        staging = tmp_path / "staging"
        staging.mkdir()
        _drop_catalogue(staging, "late", n=7, seed=2)
        data = (staging / "late.fits").read_bytes()
        with (inbox / "late.fits").open("wb") as fh:  # a slow copy: half, a pause, the rest
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(1.5)
            fh.write(data[len(data) // 2 :])
        (inbox / ".late.yaml.tmp").write_text((staging / "late.yaml").read_text())
        (inbox / ".late.yaml.tmp").rename(inbox / "late.yaml")  # an atomic writer's rename
        complete = time.monotonic()
        _wait_for(eager_env, 19, timeout=60)
        latency = time.monotonic() - complete
        print(f"inbox watcher: ingested {latency:.2f} s after the file was complete")
        assert latency <= 10.0, f"ingested {latency:.1f} s after the file was complete"
    finally:
        watcher.stop()
    assert not watcher.is_alive()
    rows = [r for batch in watcher.batches for r in batch]
    assert [r["status"] for r in rows] == ["ingested", "ingested"]  # no half-file was handed over
    assert [Path(r["path"]).name for r in rows] == ["early.fits", "late.fits"]
