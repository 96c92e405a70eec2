"""A real Celery worker on a real Redis broker, driven by a real Prefect flow.

* ``ingest-simulation`` twice through a ``cpu`` worker: the second run changes no row count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.integration, pytest.mark.db]

COUNTED = ("catalogues", "clusters", "observables", "products")


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in COUNTED}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def small_mock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mocks import MockConfig, generate

    out = tmp_path_factory.mktemp("mock") / "m"
    generate(MockConfig(n_clusters=24, seed=11)).write(out)
    return out


def test_ingest_simulation_twice_through_a_worker(
    prefect_harness: None, workers, service_env: dict[str, str], small_mock: Path
) -> None:
    from flows.simulate import ingest_simulation

    workers.start("cpu", "cpu0")
    first = ingest_simulation(n_clusters=24, seed=11, mock_dir=str(small_mock))
    after_first = _counts(service_env["CLUSTERMASS_DATABASE_URL"])
    second = ingest_simulation(n_clusters=24, seed=11, mock_dir=str(small_mock))
    after_second = _counts(service_env["CLUSTERMASS_DATABASE_URL"])

    assert first["catalogue_id"] == second["catalogue_id"]
    assert after_first == after_second
    assert after_first["catalogues"] == 1
    assert after_first["clusters"] == 24
    assert after_first["products"] == 24 * 4  # total, AGN, ICM maps and galaxies per cluster
    assert "clustermass.ingest_simulation" in workers.log("cpu0")  # it ran on the worker
