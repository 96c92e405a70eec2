"""The scatter index (revision 0011) gives the plain query's answer, and is never stale.

``scatter_by_mass`` / ``scatter_by_z`` answer from a run's index when it has one (blocks along
the axis, residual cells per block) and from ``*_exact`` (the plain query of revision 0010)
otherwise. Small blocks (1-64 predictions) and odd cell widths make every bin mix whole blocks,
partial blocks and percentile cells; the answers must equal the plain query's: N and the
percentiles value for value, the bias and sigma to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db import tables
from tests.results_data import (
    Seeded,
    add_two_catalogue_run,
    rolled_back_session,
    seeded_database,
)

READER = "clustermass_reader"
AXES = {"scatter_by_mass": "mass", "scatter_by_z": "z"}


@pytest.fixture(scope="module")
def index_db(admin_url: str) -> Iterator[tuple[str, Seeded]]:
    with seeded_database(admin_url, prefix="cmindex") as db:
        yield db


@pytest.fixture
def session(index_db: tuple[str, Seeded]) -> Iterator[Session]:
    with rolled_back_session(index_db[0]) as s:
        yield s


def _build(session: Session, run_id: int, block_rows: int = 8192, width: float = 0.002) -> bool:
    return session.scalar(
        sa.text("SELECT results_build_index(:r, :b, :w, 0)"),
        {"r": run_id, "b": block_rows, "w": width},
    )


def _indexed(session: Session, run_id: int) -> bool:
    return bool(
        session.scalar(
            sa.text("SELECT count(*) FROM results_index_runs WHERE run_id = :r"), {"r": run_id}
        )
    )


def _rows(session: Session, fn: str, run_id: int, edges, domain, catalogue) -> list[tuple]:
    return [
        tuple(r)
        for r in session.execute(
            sa.text(f"SELECT * FROM {fn}(:r, CAST(:e AS float8[]), :d, :c)"),
            {"r": run_id, "e": [float(e) for e in edges], "d": domain, "c": catalogue},
        )
    ]


def _assert_same(session: Session, fn: str, run_id: int, edges, domain=None, catalogue=None):
    """The indexed function equals the plain one; returns the rows for further checks."""
    got = _rows(session, fn, run_id, edges, domain, catalogue)
    ref = _rows(session, f"{fn}_exact", run_id, edges, domain, catalogue)
    assert len(got) == len(ref) == len(edges) - 1
    for g, r in zip(got, ref, strict=True):
        assert g[:4] == r[:4]  # bin, edges, N
        for a, b in zip(g[6:], r[6:], strict=True):  # p16, p50, p84: the same order
            assert a == b or (a is not None and math.isnan(a) and math.isnan(b))  # statistics
        for a, b in zip(g[4:6], r[4:6], strict=True):  # bias, sigma: sums in another order
            if b is None:
                assert a is None
            else:
                assert a == pytest.approx(b, rel=1e-12, abs=1e-14, nan_ok=True)
    return got


def _block_edges(session: Session, run_id: int, axis: str) -> list[float]:
    """Bin edges placed exactly on block boundaries (both ends of several blocks)."""
    rows = session.execute(
        sa.text(
            "SELECT lo, hi FROM results_index_blocks WHERE run_id = :r AND axis = :a "
            "AND input_domain = 'mock' ORDER BY catalogue_id, block"
        ),
        {"r": run_id, "a": axis},
    ).all()
    values = sorted({v for row in rows[1 : len(rows) - 1 : 3] for v in row})
    return values[:: max(1, len(values) // 6)]


@pytest.mark.parametrize(("block_rows", "width"), [(1, 0.003), (7, 0.0005), (64, 0.05)])
def test_indexed_scatter_equals_the_plain_query(
    session: Session, index_db: tuple[str, Seeded], block_rows: int, width: float
) -> None:
    seeded = index_db[1]
    two = add_two_catalogue_run(session, seeded)
    runs = [*seeded.run_ids.values(), two.run_id]
    for run_id in runs:
        assert _build(session, run_id, block_rows, width) is True
        assert _indexed(session, run_id)
    n_blocks = session.scalar(
        sa.text("SELECT count(*) FROM results_index_blocks WHERE run_id = :r AND axis = 'mass'"),
        {"r": runs[0]},
    )
    assert n_blocks >= 400 // max(block_rows, 1) // 2  # many blocks: the block path is exercised
    rng = np.random.default_rng(block_rows)
    ranges = {"scatter_by_mass": (13.4, 15.2), "scatter_by_z": (0.0, 0.5)}
    for fn, (lo, hi) in ranges.items():
        edge_sets = [
            [13.5, 13.75, 14.0, 14.25, 14.5, 15.1]
            if fn == "scatter_by_mass"
            else [0, 0.15, 0.3, 0.5],
            [-math.inf, math.inf],
            sorted(rng.uniform(lo, hi, 7)),
            sorted(rng.uniform(lo, hi, 2)),
            _block_edges(session, runs[0], AXES[fn]),
        ]
        for edges in edge_sets:
            for run_id in runs:
                for domain in ("mock", "observed", None):
                    _assert_same(session, fn, run_id, edges, domain)
            # the catalogue argument: the run's own (default), the other one, every one
            for catalogue in (None, two.other_catalogue_id, seeded.catalogue_id):
                _assert_same(session, fn, two.run_id, edges, "mock", catalogue)


def test_equal_axis_values_never_straddle_two_blocks(session: Session) -> None:
    """Ties (many clusters at one mass or redshift) keep one block; answers stay exact."""
    rng = np.random.default_rng(5)
    cat = tables.Catalogue(name="ties", kind="simulation", cosmology={})
    session.add(cat)
    session.flush()
    masses = rng.choice([13.6, 13.8, 14.0, 14.3], 90)
    clusters = [
        tables.Cluster(
            catalogue_id=cat.id,
            external_id=f"tie-{i}",
            redshift=float(rng.choice([0.1, 0.2, 0.3])),
            log10_m500c=float(m),
        )
        for i, m in enumerate(masses)
    ]
    session.add_all(clusters)
    run = tables.ModelRun(
        run_key="ties", kind="single", catalogue_id=cat.id, config={}, seed=0, fold_scheme="none"
    )
    session.add(run)
    session.flush()
    # repeated residuals too: order statistics fall on ties of the residual
    resid = rng.choice([-0.1, -0.02, 0.0, 0.03, 0.2], masses.size)
    session.execute(
        sa.insert(tables.Prediction),
        [
            {"run_id": run.id, "cluster_id": c.id, "log10_m500c_pred": float(m + r)}
            for c, m, r in zip(clusters, masses, resid, strict=True)
        ],
    )
    assert _build(session, run.id, block_rows=5, width=0.01)
    for axis in ("mass", "z"):
        blocks = session.execute(
            sa.text(
                "SELECT lo, hi, n FROM results_index_blocks WHERE run_id = :r AND axis = :a "
                "ORDER BY block"
            ),
            {"r": run.id, "a": axis},
        ).all()
        assert sum(b.n for b in blocks) == masses.size  # every prediction in one block
        assert all(b.lo == b.hi for b in blocks)  # a tie set is a block of its own here
        assert all(a.hi < b.lo for a, b in zip(blocks, blocks[1:], strict=False))
    for edges in ([13.5, 13.8, 14.0, 14.3, 15.0], [13.6, 13.8000001, 14.3], [-math.inf, math.inf]):
        _assert_same(session, "scatter_by_mass", run.id, edges)
    _assert_same(session, "scatter_by_z", run.id, [0.1, 0.2, 0.30000001])


def test_any_write_to_a_runs_predictions_drops_its_index(
    session: Session, index_db: tuple[str, Seeded]
) -> None:
    seeded = index_db[1]
    a, b = seeded.run_ids["single"], seeded.run_ids["multi"]

    def rebuild() -> None:
        for run_id in (a, b):
            assert _build(session, run_id, 16)
        assert _indexed(session, a) and _indexed(session, b)

    rebuild()
    session.execute(
        sa.text("UPDATE predictions SET log10_m500c_pred = log10_m500c_pred + 0.1 "
                "WHERE run_id = :r AND cluster_id = :c"),
        {"r": a, "c": int(seeded.cluster_ids[0])},
    )  # fmt: skip
    assert not _indexed(session, a) and _indexed(session, b)  # only the run written
    # stale answers are impossible: the plain path now answers, with the new prediction
    _assert_same(session, "scatter_by_mass", a, [-math.inf, math.inf])
    rebuild()
    session.execute(
        sa.text("DELETE FROM predictions WHERE run_id = :r AND cluster_id = :c"),
        {"r": b, "c": int(seeded.cluster_ids[1])},
    )
    assert _indexed(session, a) and not _indexed(session, b)
    rebuild()
    extra = tables.Cluster(catalogue_id=seeded.catalogue_id, external_id="late", redshift=0.2,
                           log10_m500c=14.1)  # fmt: skip
    session.add(extra)
    session.flush()
    session.execute(
        sa.insert(tables.Prediction),
        [{"run_id": a, "cluster_id": extra.id, "log10_m500c_pred": 14.0}],
    )
    assert not _indexed(session, a) and _indexed(session, b)
    rebuild()
    # a cluster's mass changes: the trigger-kept copies on every run's predictions change
    session.execute(
        sa.text("UPDATE clusters SET log10_m500c = log10_m500c + 0.01 WHERE id = :c"),
        {"c": int(seeded.cluster_ids[2])},
    )
    assert not _indexed(session, a) and not _indexed(session, b)
    rebuild()
    session.execute(sa.text("TRUNCATE predictions CASCADE"))
    assert not _indexed(session, a) and not _indexed(session, b)


def test_runs_with_non_finite_residuals_keep_the_plain_path(
    session: Session, index_db: tuple[str, Seeded]
) -> None:
    run_id = index_db[1].run_ids["single"]
    session.execute(
        sa.text("UPDATE predictions SET log10_m500c_pred = 'NaN' WHERE run_id = :r AND "
                "cluster_id = :c"),
        {"r": run_id, "c": int(index_db[1].cluster_ids[3])},
    )  # fmt: skip
    assert _build(session, run_id, 8) is False
    assert not _indexed(session, run_id)
    got = _assert_same(session, "scatter_by_mass", run_id, [-math.inf, math.inf])
    assert math.isnan(got[0][4])  # the plain query's answer (NaN propagates), not an error


def test_small_runs_keep_the_plain_query(session: Session, index_db: tuple[str, Seeded]) -> None:
    run_id = index_db[1].run_ids["single"]
    n = session.scalar(
        sa.text("SELECT count(*) FROM predictions WHERE run_id = :r AND residual_dex IS NOT NULL"),
        {"r": run_id},
    )
    build = sa.text("SELECT results_build_index(:r, min_predictions => :m)")
    assert session.scalar(build, {"r": run_id, "m": n + 1}) is False
    assert not _indexed(session, run_id)
    assert session.scalar(build, {"r": run_id, "m": n}) is True
    assert _indexed(session, run_id)
    # refresh_results() uses the default threshold (50,000): these runs stay plain
    session.execute(sa.text("DELETE FROM results_index_runs"))
    session.execute(sa.text("SELECT refresh_results()"))
    assert session.scalar(sa.text("SELECT count(*) FROM results_index_runs")) == 0


def test_the_library_call_builds_the_index(session: Session, index_db: tuple[str, Seeded]) -> None:
    from db import results

    run_id = index_db[1].run_ids["multi"]
    assert results.build_index(session, run_id, min_predictions=10**9) is False
    assert not _indexed(session, run_id)
    assert results.build_index(session, run_id, min_predictions=0) is True
    assert _indexed(session, run_id)
    stats = results.scatter(session, run_id=run_id, by="mass")  # answered from the index
    ref = _rows(session, "scatter_by_mass_exact", run_id, results.MASS_EDGES, "mock", None)
    assert [s.n for s in stats] == [r[3] for r in ref]
    assert [s.p50_dex for s in stats] == [r[7] for r in ref]


def test_refresh_results_builds_every_missing_index(
    session: Session, index_db: tuple[str, Seeded]
) -> None:
    session.execute(sa.text("DELETE FROM results_index_runs"))
    # the seeded runs are small: index them all the same (the operator's setting)
    session.execute(sa.text("SET LOCAL clustermass.scatter_index_min_predictions = 0"))
    session.execute(sa.text("SELECT refresh_results()"))
    with_predictions = set(
        session.scalars(sa.text("SELECT DISTINCT run_id FROM predictions")).all()
    )
    indexed = set(session.scalars(sa.text("SELECT run_id FROM results_index_runs")).all())
    assert with_predictions and indexed == with_predictions
    n = session.scalar(
        sa.text("SELECT n_predictions FROM results_index_runs WHERE run_id = :r"),
        {"r": index_db[1].run_ids["multi"]},
    )
    assert n == session.scalar(
        sa.text("SELECT count(*) FROM predictions WHERE run_id = :r AND residual_dex IS NOT NULL"),
        {"r": index_db[1].run_ids["multi"]},
    )


@pytest.mark.parametrize(
    ("block_rows", "width"), [(0, 0.002), (8, 0.0), (8, -1.0), (8, math.inf), (8, math.nan)]
)
def test_build_rejects_bad_parameters(
    session: Session, index_db: tuple[str, Seeded], block_rows: int, width: float
) -> None:
    with pytest.raises(sa.exc.DataError, match="block_rows must be >= 1 and cell_width_dex"):
        _build(session, index_db[1].run_ids["single"], block_rows, width)


def test_only_the_owner_builds_indexes(session: Session) -> None:
    def can(signature: str) -> bool:
        return session.scalar(
            sa.text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"),
            {"r": READER, "f": signature},
        )

    assert can("results_build_index(integer, integer, double precision, bigint)") is False
    f8a = "double precision[]"
    for name in ("scatter_by_mass", "scatter_by_z", "scatter_by_mass_exact", "scatter_by_z_exact"):
        assert can(f"{name}(integer, {f8a}, text, integer)") is True
