"""PostgreSQL faults: a connection killed mid-ingest rolls the batch back; a retry is exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.conftest import service_environment

pytestmark = pytest.mark.db

TABLES = ("catalogues", "clusters", "observables", "products")


@pytest.fixture
def ingest_env(admin_url: str, tmp_path: Path) -> Iterator[str]:
    with service_environment(admin_url, tmp_path / "store", prefix="cmfault") as url:
        yield url


@pytest.fixture(scope="module")
def mock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mocks import MockConfig, generate

    out = tmp_path_factory.mktemp("mock") / "m"
    generate(MockConfig(n_clusters=30, seed=21)).write(out)
    return out


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in TABLES}
    engine.dispose()
    return counts


class BackendKiller:
    """Terminate the connection's own backend when it first inserts into ``table``.

    ``pg_terminate_backend`` from a second connection: exactly what an operator, a failover or
    a network cut does to a session in the middle of a transaction.
    """

    def __init__(self, engine: sa.Engine, admin_url: str, table: str, times: int = 1) -> None:
        self.engine, self.admin_url, self.table, self.left = engine, admin_url, table, times
        self.kills = 0
        event.listen(engine, "before_cursor_execute", self)

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if self.left <= 0 or not statement.lstrip().upper().startswith(
            f"INSERT INTO {self.table.upper()}"
        ):
            return
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as other:
            assert other.scalar(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        admin.dispose()
        self.left -= 1
        self.kills += 1

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


def test_killed_connection_rolls_back_and_retry_is_exact(
    ingest_env: str, admin_url: str, mock_dir: Path
) -> None:
    from services.database import get_engine
    from services.jobs.simulation import ingest_mock_directory
    from services.transient import is_transient

    killer = BackendKiller(get_engine(), admin_url, "observables")
    with pytest.raises(sa.exc.OperationalError) as info:
        ingest_mock_directory(mock_dir)
    killer.remove()
    assert killer.kills == 1
    assert is_transient(info.value)  # the Celery task and the Prefect task would retry it
    # The catalogue and cluster rows written before the kill were in the same transaction.
    assert _counts(ingest_env) == dict.fromkeys(TABLES, 0)

    summary = ingest_mock_directory(mock_dir)  # the retry
    counts = _counts(ingest_env)
    assert counts["catalogues"] == 1 and counts["clusters"] == 30
    assert counts["products"] == 4 * 30
    assert counts["observables"] == summary.n_observables


def test_killed_connection_mid_ingest_the_eager_flow_retries_and_finishes_once(
    prefect_harness: None,
    ingest_env: str,
    admin_url: str,
    mock_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The CLI's default: no broker (Celery runs the task in-process) and Prefect ephemeral. A
    # transient database error inside the Celery task must reach the Prefect task's retry
    # condition as what it is, and the retried ingest must land exactly once.
    from flows.simulate import ingest_simulation
    from services.database import get_engine
    from services.jobs import simulation

    attempts: list[int] = []
    real_ingest = simulation.ingest_mock_directory

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        attempts.append(1)
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(simulation, "ingest_mock_directory", counted)
    killer = BackendKiller(get_engine(), admin_url, "observables")
    try:
        summary = ingest_simulation(n_clusters=30, seed=21, mock_dir=str(mock_dir))
    finally:
        killer.remove()

    assert killer.kills == 1 and len(attempts) == 2  # killed once, retried once, then done
    counts = _counts(ingest_env)
    assert counts == {
        "catalogues": 1,
        "clusters": 30,
        "observables": summary["n_observables"],
        "products": 4 * 30,
    }
    assert summary["n_clusters"] == 30 and summary["n_products"] == 4 * 30
