"""The ``train-models`` flow as an operator sees it (in-process Celery, Prefect's harness):

* one Prefect task run per fold, named ``train-fold-<n>``, each Completed;
* ``clustermass fit`` off a terminal prints one line per finished fold (no bar);
* a run left ``running`` by a dead process is listed by ``clustermass runs recover`` and
  ``clustermass fit --resume RUN`` retrains only its unfinished fold (the others are kept);
  a run whose flow still heartbeats is not resumed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tests.conftest import service_environment

pytestmark = pytest.mark.db


@pytest.fixture
def flow_env(admin_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    with service_environment(admin_url, tmp_path / "data", prefix="cmtrain") as url:
        engine = sa.create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def small_mock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mocks import MockConfig, generate

    out = tmp_path_factory.mktemp("mock") / "m"
    generate(MockConfig(n_clusters=24, seed=11)).write(out)
    return out


def _task_runs() -> list[tuple[str, str]]:
    from prefect.client.orchestration import get_client

    async def read() -> list[tuple[str, str]]:
        async with get_client() as client:
            runs = await client.read_task_runs()
        return [(r.name, r.state.type.value if r.state else "") for r in runs]

    return asyncio.run(read())


def test_fit_has_a_task_run_per_fold_and_resumes_a_run_left_by_a_dead_process(
    prefect_harness: None, flow_env: sa.Engine, small_mock: Path
) -> None:
    from cli.main import app
    from services.jobs.simulation import ingest_mock_directory
    from services.jobs.training import RunBusyError, reopen_run

    cat = ingest_mock_directory(small_mock).catalogue_id
    runner = CliRunner()
    before = {name for name, _ in _task_runs()}
    res = runner.invoke(
        app, ["fit", "--catalogue", str(cat), "--models", "single", "--epochs", "1"]
    )
    assert res.exit_code == 0, res.output

    with flow_env.connect() as conn:
        run_id, status = conn.execute(sa.text("SELECT id, status FROM model_runs")).one()
        folds = conn.execute(
            sa.text("SELECT fold, finished_at FROM model_run_folds ORDER BY fold")
        ).all()
    assert status == "done" and len(folds) >= 2

    # one Prefect task run per fold, each Completed
    fold_runs = {
        int(m.group(1)): state
        for name, state in _task_runs()
        if name not in before and (m := re.fullmatch(r"train-fold-(\d+)", name))
    }
    assert fold_runs == {f: "COMPLETED" for f, _ in folds}
    # not a terminal: one line per finished fold, no bar
    for fold, _ in folds:
        assert re.search(rf"single \(run {run_id}\) fold {fold} done: sigma_lnM", res.output)

    # The flow's process died while the last fold trained: the run is 'running', its
    # heartbeat old, that fold 'running' without results.
    last = folds[-1][0]
    with flow_env.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE model_runs SET status = 'running', finished_at = NULL, "
                "heartbeat_at = now() - interval '1 hour'"
            )
        )
        conn.execute(
            sa.text("UPDATE model_run_folds SET status = 'running' WHERE fold = :f"), {"f": last}
        )
    res = runner.invoke(app, ["runs", "recover"])
    assert res.exit_code == 0, res.output
    assert re.search(rf"\b{run_id}\b.*single.*running.*{len(folds) - 1}/{len(folds)}", res.output)

    res = runner.invoke(app, ["fit", "--resume", str(run_id)])
    assert res.exit_code == 0, res.output
    with flow_env.connect() as conn:
        assert conn.scalar(sa.text("SELECT status FROM model_runs")) == "done"
        after = dict(conn.execute(sa.text("SELECT fold, finished_at FROM model_run_folds")).all())
    kept = {f: t for f, t in folds if f != last}
    assert {f: after[f] for f in kept} == kept  # finished folds were not retrained
    assert after[last] > folds[-1][1]  # the unfinished one was
    assert "no run left running" in runner.invoke(app, ["runs", "recover"]).output

    # a run whose flow heartbeated just now is driven by a live process: not resumed
    with flow_env.begin() as conn:
        conn.execute(sa.text("UPDATE model_runs SET status = 'running', heartbeat_at = now()"))
    with pytest.raises(RunBusyError, match="heartbeated"):
        reopen_run(run_id)


def test_fitting_a_cancelled_run_again_reopens_its_unfinished_folds(
    flow_env: sa.Engine, small_mock: Path
) -> None:
    from services.jobs.simulation import ingest_mock_directory
    from services.jobs.training import cancel_run, create_run, fail_run

    cat = ingest_mock_directory(small_mock).catalogue_id
    config = {"model": {"kind": "single"}, "training": {"max_epochs": 1}}
    run_id, folds = create_run(cat, config)
    with flow_env.begin() as conn:  # one fold had finished before the cancel
        conn.execute(
            sa.text("UPDATE model_run_folds SET status = 'done' WHERE fold = :f"), {"f": folds[0]}
        )
    assert cancel_run(run_id, "cancelled (KeyboardInterrupt)") == folds[1:]

    def states() -> tuple[str, dict[int, str]]:
        with flow_env.connect() as conn:
            run = conn.scalar(sa.text("SELECT status FROM model_runs"))
            fold_rows = conn.execute(sa.text("SELECT fold, status FROM model_run_folds")).all()
        return run, dict(fold_rows)

    assert states() == ("cancelled", {f: "done" if f == folds[0] else "cancelled" for f in folds})
    assert create_run(cat, config) == (run_id, folds)
    assert states() == ("pending", {f: "done" if f == folds[0] else "pending" for f in folds})
    fail_run(run_id, "CeleryTaskFailedError: boom")
    assert states()[0] == "failed"
    create_run(cat, config)
    assert states()[0] == "pending"
