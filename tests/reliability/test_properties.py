"""Property-based tests: the scatter SQL equals numpy on any data; corrupt map files fail cleanly."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db import tables
from tests.conftest import create_database, drop_database
from tests.results_data import numpy_bins

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def prop_db(admin_url: str) -> Iterator[str]:
    from db import migrate

    url = create_database(admin_url, "cmprop")
    migrate.upgrade(url, "head")
    yield url
    drop_database(admin_url, url)


residuals = st.lists(
    st.tuples(
        st.floats(13.3, 15.3, allow_nan=False),  # log10 M (some outside the default edges)
        st.floats(0.01, 0.6, allow_nan=False),  # redshift
        st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False),  # residual [dex]
    ),
    min_size=0,
    max_size=60,
)
edges = st.lists(st.floats(13.0, 15.5, allow_nan=False), min_size=2, max_size=6, unique=True).map(
    sorted
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=residuals, mass_edges=edges)
def test_sql_scatter_equals_numpy(prop_db: str, rows, mass_edges) -> None:
    from db import results

    engine = sa.create_engine(prop_db)
    with engine.connect() as conn:
        trans = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        cat = tables.Catalogue(name="p", kind="simulation", cosmology={})
        session.add(cat)
        session.flush()
        run = tables.ModelRun(
            run_key="k", kind="single", config={}, seed=0, fold_scheme="octant", status="done"
        )
        session.add(run)
        session.flush()
        log_m = np.array([r[0] for r in rows])
        z = np.array([r[1] for r in rows])
        resid = np.array([r[2] for r in rows])
        if rows:
            ids = session.scalars(
                insert(tables.Cluster)
                .values(
                    [
                        {
                            "catalogue_id": cat.id,
                            "external_id": str(i),
                            "redshift": zi,
                            "log10_m500c": mi,
                        }
                        for i, (mi, zi) in enumerate(zip(log_m, z, strict=True))
                    ]
                )
                .returning(tables.Cluster.id)
            ).all()
            session.execute(
                insert(tables.Prediction).values(
                    [
                        {"run_id": run.id, "cluster_id": cid, "log10_m500c_pred": m + r}
                        for cid, m, r in zip(ids, log_m, resid, strict=True)
                    ]
                )
            )
        got = results.scatter(session, run_id=run.id, by="mass", mass_edges=mass_edges)
        # residual as stored: (m + r) - m in float64, exactly what SQL subtracts
        stored = (log_m + resid) - log_m
        want = numpy_bins(log_m, stored, list(mass_edges))
        session.close()
        trans.rollback()
    engine.dispose()

    assert [b.n for b in got] == [w["n"] for w in want]
    for b, w in zip(got, want, strict=True):
        if w["n"] == 0:
            assert b.bias_dex is None and b.sigma_lnm is None
            continue
        assert math.isclose(b.bias_dex, w["bias_dex"], rel_tol=1e-9, abs_tol=1e-12)
        if w["sigma_lnm"] is None:
            assert b.sigma_lnm is None
        else:
            assert math.isclose(b.sigma_lnm, w["sigma_lnm"], rel_tol=1e-9, abs_tol=1e-12)
        np.testing.assert_allclose(
            [b.p16_dex, b.p50_dex, b.p84_dex], w["pct"], rtol=1e-9, atol=1e-12
        )


@pytest.fixture(scope="module")
def one_map(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from mocks import MockConfig, generate

    out = tmp_path_factory.mktemp("mock") / "m"
    cat = generate(MockConfig(n_clusters=2, seed=5))
    cat.write(out)
    cid = str(cat.truth["cluster_id"][0])
    return out / "maps" / f"{cid}.fits", cid


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_corrupt_map_files_fail_with_a_clear_error(one_map, tmp_path: Path, data) -> None:
    """Flip bytes or truncate a map file: read_map_file either reads consistent maps or raises
    MockCatalogueError naming the file; never another exception, never inconsistent maps."""
    from mocks import MockCatalogueError, read_map_file

    path, cid = one_map
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
            raw[pos] = data.draw(st.integers(0, 255), label="byte")
    bad = tmp_path / "bad.fits"
    bad.write_bytes(bytes(raw))
    try:
        maps = read_map_file(bad, cid)
    except MockCatalogueError as exc:
        assert str(bad) in str(exc)
        return
    assert np.all(maps["TOTAL"] >= maps["AGN"] + maps["ICM"])  # a survivor is still consistent
