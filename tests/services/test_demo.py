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
        app, ["demo", "--n", "200", "--epochs", "1", "--attribute-clusters", "8"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scatter by mass" in out and "scatter by redshift" in out
    assert "Single-band CNN" in out and "done" in out
    assert "Result: the Single-band CNN" in out and "wall time" in out

    engine = sa.create_engine(demo_env)
    with engine.connect() as conn:
        count = lambda sql: conn.scalar(sa.text(sql))  # noqa: E731
        assert count("SELECT count(*) FROM catalogues") == 2  # training mock + independent mock
        n_train = count("SELECT count(*) FROM clusters WHERE catalogue_id = 1")
        assert n_train == 200
        assert count("SELECT status FROM model_runs") == "done"
        # configs/demo.yaml trains octant folds 0-3 (x < 176 h^-1 Mpc): one fold per occupied
        # octant among them (a small mock holds few halos, each seen at several snapshots,
        # mocks/assembly.py, so not every octant need hold one)
        octant = (
            "(floor(pos_x_mpc_h / 176)::int * 4 + floor(pos_y_mpc_h / 176)::int * 2"
            " + floor(pos_z_mpc_h / 176)::int)"
        )
        octants = count(
            f"SELECT count(DISTINCT {octant}) FROM clusters WHERE catalogue_id = 1 AND {octant} < 4"
        )
        assert octants >= 1
        assert count("SELECT count(*) FROM model_run_folds WHERE status = 'done'") == octants
        # the training clusters of those octants (out-of-fold) and every cluster of the
        # independent mock have exactly one prediction of the run
        predicted = count(f"SELECT count(*) FROM clusters WHERE catalogue_id = 2 OR {octant} < 4")
        assert count("SELECT count(*) FROM predictions") == predicted
        # the benchmark table is computed on the clusters the run predicted
        n_bench = count(f"SELECT count(*) FROM clusters WHERE catalogue_id = 1 AND {octant} < 4")
        assert f"on the same {n_bench} clusters" in out
        assert count("SELECT count(*) FROM attributions") == 8
        assert count("SELECT count(*) FROM scatter_bootstrap") > 0
        assert count("SELECT count(*) FROM v_scatter_summary") > 0
    engine.dispose()
