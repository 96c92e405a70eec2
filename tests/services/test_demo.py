"""`clustermass demo` (the README's first command) end to end, on a tiny mock.

In-process Celery (no broker), Prefect's test harness, a private database: mock -> ingest ->
train (8 folds) -> predict -> attribute -> report, and the tables it prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tests.conftest import service_environment

pytestmark = pytest.mark.db


@pytest.fixture
def demo_env(admin_url: str, tmp_path: Path) -> Iterator[str]:
    # not migrated: the demo upgrades the database itself, as on a first run
    with service_environment(admin_url, tmp_path / "data", prefix="cmdemo", migrated=False) as url:
        yield url


def test_demo_runs_the_whole_chain(prefect_harness: None, demo_env: str) -> None:
    from cli.main import app

    result = CliRunner().invoke(
        app, ["demo", "--n", "48", "--epochs", "1", "--attribute-clusters", "8"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scatter by mass" in out and "scatter by redshift" in out
    assert "Single-band CNN" in out and "done" in out

    engine = sa.create_engine(demo_env)
    with engine.connect() as conn:
        count = lambda sql: conn.scalar(sa.text(sql))  # noqa: E731
        assert count("SELECT count(*) FROM catalogues") == 2  # training mock + independent mock
        n_train = count("SELECT count(*) FROM clusters WHERE catalogue_id = 1")
        assert n_train == 48
        assert count("SELECT status FROM model_runs") == "done"
        # one fold per occupied octant: a small mock holds few halos (each seen at several
        # snapshots, mocks/assembly.py), so not every octant of the box need hold one
        octants = count(
            "SELECT count(DISTINCT floor(pos_x_mpc_h / 176)::int * 4 + floor(pos_y_mpc_h / 176)"
            "::int * 2 + floor(pos_z_mpc_h / 176)::int) FROM clusters WHERE catalogue_id = 1"
        )
        assert octants >= 2
        assert count("SELECT count(*) FROM model_run_folds WHERE status = 'done'") == octants
        # every cluster of both catalogues has exactly one prediction of the run
        assert count("SELECT count(*) FROM predictions") == count("SELECT count(*) FROM clusters")
        assert count("SELECT count(*) FROM attributions") == 8
        assert count("SELECT count(*) FROM scatter_bootstrap") > 0
        assert count("SELECT count(*) FROM v_scatter_summary") > 0
    engine.dispose()
