"""The binned results SQL functions agree with numpy, keep empty bins, and stay consistent."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db import results, tables
from db.errors import BinEdgesError, CatalogueNotFoundError, ProxyNotFoundError, RunNotFoundError
from tests.results_data import (
    EMPTY_MASS_BIN,
    RUNS,
    Seeded,
    add_two_catalogue_run,
    numpy_bins,
    rolled_back_session,
    seeded_database,
)

TOL = 1e-9


@pytest.fixture(scope="module")
def results_db(admin_url: str) -> Iterator[tuple[str, Seeded]]:
    with seeded_database(admin_url) as db:
        yield db


@pytest.fixture
def seeded(results_db: tuple[str, Seeded]) -> Seeded:
    return results_db[1]


@pytest.fixture
def session(results_db: tuple[str, Seeded]) -> Iterator[Session]:
    """Overrides the conftest session: the seeded database, rolled back after each test."""
    with rolled_back_session(results_db[0]) as s:
        yield s


def _assert_matches(stats: list[results.BinStats], ref: list[dict]) -> None:
    assert len(stats) == len(ref)
    for s, r in zip(stats, ref, strict=True):
        assert s.n == r["n"]
        if r["n"] == 0:
            assert (s.bias_dex, s.sigma_lnm, s.p16_dex, s.p50_dex, s.p84_dex) == (None,) * 5
            continue
        assert s.bias_dex == pytest.approx(r["bias_dex"], abs=TOL, rel=0)
        if r["sigma_lnm"] is None:
            assert s.sigma_lnm is None
        else:
            assert s.sigma_lnm == pytest.approx(r["sigma_lnm"], abs=TOL, rel=0)
        got = [s.p16_dex, s.p50_dex, s.p84_dex]
        np.testing.assert_allclose(got, r["pct"], atol=TOL, rtol=0)


@pytest.mark.parametrize("run", list(RUNS))
def test_scatter_by_mass_equals_numpy(session: Session, seeded: Seeded, run: str) -> None:
    stats = results.scatter(session, run_id=seeded.run_ids[run], by="mass")
    resid = seeded.pred[run] - seeded.log10_m
    _assert_matches(stats, numpy_bins(seeded.log10_m, resid, list(results.MASS_EDGES)))
    assert [(s.mass_lo, s.mass_hi) for s in stats] == list(
        zip(results.MASS_EDGES[:-1], results.MASS_EDGES[1:], strict=True)
    )
    # Every cluster with a mass in range is counted once (mass-less clusters never are).
    in_range = (seeded.log10_m >= 13.5) & (seeded.log10_m < 15.1)
    assert sum(s.n for s in stats) == int(in_range.sum())


def test_scatter_by_z_and_custom_edges_equal_numpy(session: Session, seeded: Seeded) -> None:
    resid = seeded.pred["single"] - seeded.log10_m
    run_id = seeded.run_ids["single"]
    stats = results.scatter(session, run_id=run_id, by="z")
    _assert_matches(stats, numpy_bins(seeded.redshift, resid, list(results.Z_EDGES)))
    edges = [0.05, 0.1, 0.2, 0.3, 0.44, 0.47]
    stats = results.scatter(session, run_id=run_id, by="z", z_edges=edges)
    _assert_matches(stats, numpy_bins(seeded.redshift, resid, edges))
    mass_edges = [13.0, 13.6, 13.61, 14.0, 16.0]
    stats = results.scatter(session, run_id=run_id, by="mass", mass_edges=mass_edges)
    _assert_matches(stats, numpy_bins(seeded.log10_m, resid, mass_edges))


def test_scatter_by_mass_z_equals_numpy_in_mass_major_order(
    session: Session, seeded: Seeded
) -> None:
    run = "multimodal"
    resid = seeded.pred[run] - seeded.log10_m
    stats = results.scatter(session, run_id=seeded.run_ids[run], by="mass_z")
    m_edges, z_edges = list(results.MASS_EDGES), list(results.Z_EDGES)
    assert len(stats) == (len(m_edges) - 1) * (len(z_edges) - 1)
    ref = []
    for lo, hi in zip(m_edges[:-1], m_edges[1:], strict=True):
        sel = (seeded.log10_m >= lo) & (seeded.log10_m < hi)
        ref += numpy_bins(seeded.redshift[sel], resid[sel], z_edges)
    _assert_matches(stats, ref)
    assert [(s.mass_lo, s.z_lo) for s in stats[:3]] == [(13.5, 0.0), (13.5, 0.15), (13.5, 0.3)]


def test_empty_bins_give_zero_and_null_not_an_error(session: Session, seeded: Seeded) -> None:
    run_id = seeded.run_ids["multi"]
    stats = results.scatter(session, run_id=run_id, by="mass")
    empty = [s for s in stats if (s.mass_lo, s.mass_hi) == EMPTY_MASS_BIN]
    assert len(empty) == 1 and empty[0].n == 0 and empty[0].sigma_lnm is None
    # Bins far outside the sample: all present, all empty.
    far = results.scatter(session, run_id=run_id, by="mass", mass_edges=[16, 17, 18])
    assert [(s.n, s.bias_dex, s.sigma_lnm, s.p50_dex) for s in far] == [(0, None, None, None)] * 2
    # A bin with exactly one cluster: a bias and percentiles, but no sample scatter.
    m0 = float(seeded.log10_m[0])
    one = results.scatter(session, run_id=run_id, by="mass", mass_edges=[m0, m0 + 1e-9])
    assert one[0].n == 1 and one[0].sigma_lnm is None
    assert one[0].p16_dex == one[0].p84_dex == pytest.approx(seeded.pred["multi"][0] - m0)
    grid = results.scatter(session, run_id=run_id, by="mass_z")
    assert all(s.n == 0 and s.sigma_lnm is None for s in grid if s.mass_lo == 14.25)


def test_recovers_the_scatter_and_bias_put_in(session: Session, seeded: Seeded) -> None:
    (overall,) = results.scatter(session, run_id=seeded.run_ids["multimodal"], by="all")
    _, bias, sigma = RUNS["multimodal"]
    n = overall.n
    assert overall.mass_lo == -math.inf and overall.mass_hi == math.inf
    # Gaussian residuals: std error of sigma ~ sigma / sqrt(2N), of the mean sigma / sqrt(N).
    assert overall.sigma_lnm == pytest.approx(sigma * math.log(10), rel=4 / math.sqrt(2 * n))
    assert overall.bias_dex == pytest.approx(bias, abs=4 * sigma / math.sqrt(n))
    assert overall.p84_dex - overall.p16_dex == pytest.approx(2 * sigma, rel=0.15)


def test_input_domain_filter(session: Session, seeded: Seeded) -> None:
    run_id = seeded.run_ids["multi"]
    mock = results.scatter(session, run_id=run_id, by="all")[0]
    observed = results.scatter(session, run_id=run_id, by="all", input_domain="observed")[0]
    both = results.scatter(session, run_id=run_id, by="all", input_domain=None)[0]
    assert observed.n == len(seeded.observed_cluster_ids) == 2
    assert observed.bias_dex == pytest.approx(14.9 - 14.3, abs=TOL)
    assert both.n == mock.n + observed.n


@pytest.mark.parametrize("edges", [[14.0], [14.0, 13.5], [13.5, 13.5, 14.0], [13.5, math.nan]])
def test_bad_edges_are_refused_in_python_and_in_sql(
    session: Session, seeded: Seeded, edges: list[float]
) -> None:
    run_id = seeded.run_ids["single"]
    with pytest.raises(BinEdgesError, match="strictly increasing"):
        results.scatter(session, run_id=run_id, mass_edges=edges)
    with pytest.raises(sa.exc.DBAPIError, match="strictly increasing"):
        session.execute(
            sa.text("SELECT * FROM scatter_by_mass(:r, CAST(:e AS double precision[]))"),
            {"r": run_id, "e": edges},
        )


def test_sql_side_edge_errors_become_bin_edges_errors(session: Session, seeded: Seeded) -> None:
    """The server's invalid_parameter_value (SQLSTATE 22023) reaches the user as BinEdgesError.

    Under psycopg 3 the code is ``orig.sqlstate``; reading psycopg2's ``pgcode`` alone let it
    through as a raw DBAPIError.
    """
    sql = "SELECT * FROM scatter_by_mass(:r, CAST(:e AS double precision[]))"
    with pytest.raises(BinEdgesError, match="strictly increasing"), session.begin_nested():
        results._execute(session, sql, {"r": seeded.run_ids["single"], "e": [15.0, 14.0]})


def test_unknown_run_lists_existing_ones(session: Session, seeded: Seeded) -> None:
    with pytest.raises(RunNotFoundError, match=str(seeded.run_ids["single"])):
        results.scatter(session, run_id=10**6)


def test_trigger_kept_copies_follow_the_cluster(session: Session, seeded: Seeded) -> None:
    run_id, cid = seeded.run_ids["single"], int(seeded.cluster_ids[5])
    pred = session.scalars(
        sa.select(tables.Prediction).where(
            tables.Prediction.run_id == run_id, tables.Prediction.cluster_id == cid
        )
    ).one()
    assert pred.cluster_log10_m500c == pytest.approx(seeded.log10_m[5])
    assert pred.cluster_redshift == pytest.approx(seeded.redshift[5])
    # A client writing the copy directly is overruled by the trigger.
    session.execute(
        sa.update(tables.Prediction)
        .where(tables.Prediction.id == pred.id)
        .values(cluster_log10_m500c=99.0)
    )
    got = session.scalar(
        sa.select(tables.Prediction.cluster_log10_m500c).where(tables.Prediction.id == pred.id)
    )
    assert got == pytest.approx(seeded.log10_m[5])
    # Re-measuring the cluster moves its prediction between bins at once.
    session.execute(
        sa.update(tables.Cluster).where(tables.Cluster.id == cid).values(log10_m500c=15.05)
    )
    resid = seeded.pred["single"] - seeded.log10_m
    log_m = seeded.log10_m.copy()
    log_m[5] = 15.05
    resid[5] = seeded.pred["single"][5] - 15.05
    stats = results.scatter(session, run_id=run_id, by="mass")
    _assert_matches(stats, numpy_bins(log_m, resid, list(results.MASS_EDGES)))


def test_updating_a_clusters_redshift_moves_its_predictions_to_the_new_z_bin(
    session: Session, seeded: Seeded
) -> None:
    run_id = seeded.run_ids["single"]
    i = int(np.flatnonzero(seeded.redshift < results.Z_EDGES[1])[0])  # a low-z cluster
    before = results.scatter(session, run_id=run_id, by="z")
    # Re-measuring only the redshift (the mass is unchanged) moves the cluster to the top z bin.
    session.execute(
        sa.update(tables.Cluster)
        .where(tables.Cluster.id == int(seeded.cluster_ids[i]))
        .values(redshift=0.45)
    )
    after = results.scatter(session, run_id=run_id, by="z")
    assert [a.n - b.n for a, b in zip(after, before, strict=True)] == [-1, 0, 1]
    z = seeded.redshift.copy()
    z[i] = 0.45
    resid = seeded.pred["single"] - seeded.log10_m
    _assert_matches(after, numpy_bins(z, resid, list(results.Z_EDGES)))


def test_values_on_bin_edges_fall_in_the_upper_bin_and_the_top_edge_is_excluded(
    session: Session, seeded: Seeded
) -> None:
    # Bins are half-open [lo, hi): a mass exactly on an inner edge counts once, in the bin above
    # it; a mass exactly on the top edge (15.1) is outside every bin.
    run_id = seeded.run_ids["multi"]
    edges = list(results.MASS_EDGES)
    inner, top = 14.0, edges[-1]
    assert inner in edges[1:-1]
    before = results.scatter(session, run_id=run_id, by="mass")
    lowest = int(np.flatnonzero(seeded.log10_m < edges[1])[0])  # two clusters of the bottom bin
    second = int(np.flatnonzero(seeded.log10_m < edges[1])[1])
    for i, mass in ((lowest, inner), (second, top)):
        session.execute(
            sa.update(tables.Cluster)
            .where(tables.Cluster.id == int(seeded.cluster_ids[i]))
            .values(log10_m500c=mass)
        )
    after = results.scatter(session, run_id=run_id, by="mass")
    k_inner = edges.index(inner)  # the bin [14.0, 14.25)
    change = [0] * len(before)
    change[0] = -2
    change[k_inner] = 1
    assert [a.n - b.n for a, b in zip(after, before, strict=True)] == change
    log_m = seeded.log10_m.copy()
    log_m[[lowest, second]] = inner, top
    resid = seeded.pred["multi"] - log_m
    _assert_matches(after, numpy_bins(log_m, resid, edges))
    # the same on a custom z grid whose top edge is a redshift present in the data
    z_top = float(seeded.redshift.max())
    stats = results.scatter(session, run_id=run_id, by="z", z_edges=[0.0, 0.25, z_top])
    assert sum(s.n for s in stats) == int(np.sum(seeded.redshift < z_top))


def test_summary_after_refresh_matches_the_functions(session: Session, seeded: Seeded) -> None:
    results.refresh(session)
    rows = results.summary(session, axis="mass", source="run")
    run_id = seeded.run_ids["single"]
    mine = [r for r in rows if r["run_id"] == run_id and r["input_domain"] == "mock"]
    live = results.scatter(session, run_id=run_id, by="mass")
    assert [r["n"] for r in mine] == [s.n for s in live]
    assert [r["sigma_lnm"] for r in mine] == pytest.approx(
        [s.sigma_lnm for s in live], abs=TOL, nan_ok=True
    )
    overall = results.summary(session, axis="all")
    subjects = {r["subject"] for r in overall}
    survey = session.scalar(
        sa.select(tables.Cluster.catalogue_id).where(
            tables.Cluster.id == int(seeded.observed_cluster_ids[0])
        )
    )
    # one subject per run, input domain and catalogue of its predictions
    assert f"run:{seeded.run_ids['multi']}:observed:{survey}" in subjects
    assert f"run:{seeded.run_ids['multi']}:mock:{seeded.catalogue_id}" in subjects
    assert len([r for r in overall if r["source"] == "run"]) == len(RUNS) + 1
    # Stale until refreshed: a new run appears only after refresh().
    new = tables.ModelRun(
        run_key="late", kind="single", config={}, seed=0, fold_scheme="none", status="done"
    )
    session.add(new)
    session.flush()
    session.add(
        tables.Prediction(run_id=new.id, cluster_id=int(seeded.cluster_ids[0]), log10_m500c_pred=14)
    )
    session.flush()
    assert not [r for r in results.summary(session) if r["run_id"] == new.id]
    results.refresh(session)
    assert [r["n"] for r in results.summary(session) if r["run_id"] == new.id] == [1]


def test_outliers_finds_the_planted_one(session: Session, seeded: Seeded) -> None:
    rows = results.outliers(session, run_id=seeded.run_ids["multi"], n_sigma=3)
    assert rows[0]["cluster_id"] == seeded.outlier_cluster_id
    assert rows[0]["pull"] == pytest.approx(1.0 / math.hypot(0.07, 0.02))
    assert all(abs(r["pull"]) > 3 for r in rows)


def test_run_scatter_counts_only_the_training_catalogue_by_default(
    session: Session, seeded: Seeded
) -> None:
    """Issue 16: a run that also predicted a second catalogue gives N = its out-of-fold count."""
    two = add_two_catalogue_run(session, seeded)
    overall = results.scatter(session, run_id=two.run_id, by="all")[0]
    assert overall.n == two.n_training
    assert overall.bias_dex == pytest.approx(float(two.resid_training.mean()), abs=TOL)
    by_mass = results.scatter(session, run_id=two.run_id, by="mass")
    in_range = (seeded.log10_m >= 13.5) & (seeded.log10_m < 15.1)
    _assert_matches(
        by_mass, numpy_bins(seeded.log10_m, two.resid_training, list(results.MASS_EDGES))
    )
    assert sum(s.n for s in by_mass) == int(in_range.sum())
    by_z = results.scatter(session, run_id=two.run_id, by="z")
    assert sum(s.n for s in by_z) == two.n_training
    by_mz = results.scatter(
        session, run_id=two.run_id, by="mass_z", mass_edges=[-math.inf, math.inf]
    )
    assert sum(s.n for s in by_mz) == two.n_training
    # The other catalogue on request, alone.
    other = results.scatter(
        session, run_id=two.run_id, by="all", catalogue_id=two.other_catalogue_id
    )[0]
    assert other.n == two.n_other
    assert other.bias_dex == pytest.approx(float(two.resid_other.mean()), abs=TOL)
    same = results.scatter(session, run_id=two.run_id, by="all", catalogue_id=seeded.catalogue_id)
    assert same[0].n == two.n_training
    with pytest.raises(CatalogueNotFoundError, match=r"predicted catalogue\(s\) \[\d+, \d+\]"):
        results.scatter(session, run_id=two.run_id, catalogue_id=10**6)
    # The summary behind `query runs` and `report`: one subject per catalogue, the training
    # catalogue's by default.
    results.refresh(session)
    default = [r for r in results.summary(session) if r["run_id"] == two.run_id]
    assert [(r["catalogue_id"], r["n"]) for r in default] == [(seeded.catalogue_id, two.n_training)]
    chosen = results.summary(session, catalogue_id=two.other_catalogue_id)
    assert [(r["run_id"], r["n"]) for r in chosen] == [(two.run_id, two.n_other)]


def test_stored_bootstrap_intervals_use_the_training_catalogue_too(
    session: Session, seeded: Seeded
) -> None:
    """The report prints the scatter next to its bootstrap interval: same residuals, same N."""
    from db import bootstrap

    two = add_two_catalogue_run(session, seeded)
    (boot,) = bootstrap.store_bootstrap(session, run_id=two.run_id, axis="all", n_resamples=20)
    (live,) = results.scatter(session, run_id=two.run_id, by="all")
    assert boot.n == live.n == two.n_training
    assert boot.sigma_lnm == pytest.approx(live.sigma_lnm, rel=1e-12)


def _finished_run(session: Session, key: str) -> tables.ModelRun:
    """A finished single-band run with no predictions yet."""
    run = tables.ModelRun(
        run_key=key, kind="single", config={}, seed=0, fold_scheme="none", status="done"
    )
    session.add(run)
    session.flush()
    return run


def test_outliers_default_to_three_sigma_and_any_domain_when_asked(
    session: Session, seeded: Seeded
) -> None:
    """Pulls of 3.5 and 2.5 sigma: the default threshold is 3 (the docstring's and the CLI's)."""
    run = _finished_run(session, "outlier-threshold")
    ids = [int(c) for c in seeded.cluster_ids[:3]]
    truth = dict(
        session.execute(
            sa.select(tables.Cluster.id, tables.Cluster.log10_m500c).where(
                tables.Cluster.id.in_(ids)
            )
        ).all()
    )
    err = 0.1
    for cid, pull, domain in zip(ids, (3.5, 2.5, -3.5), ("mock", "mock", "observed"), strict=True):
        session.add(
            tables.Prediction(
                run_id=run.id, cluster_id=cid, log10_m500c_pred=truth[cid] + pull * err,
                log10_m500c_pred_err=err, input_domain=domain,
            )
        )  # fmt: skip
    session.flush()
    pulls = dict(
        session.execute(
            sa.text("SELECT cluster_id, pull FROM v_residuals WHERE run_id = :r"), {"r": run.id}
        ).all()
    )
    # the catalogue errors (if any) only lower the pulls: 3.5 stays above 3, 2.5 below
    assert pulls[ids[0]] > 3 > pulls[ids[1]] and pulls[ids[2]] < -3
    assert [r["cluster_id"] for r in results.outliers(session, run_id=run.id)] == [ids[0]]
    assert results.outliers(session, run_id=run.id, n_sigma=pulls[ids[0]] + 0.01) == []
    both = results.outliers(session, run_id=run.id, input_domain=None)
    assert sorted(r["cluster_id"] for r in both) == sorted([ids[0], ids[2]])
    assert [
        r["cluster_id"] for r in results.outliers(session, run_id=run.id, input_domain="observed")
    ] == [ids[2]]


def test_bin_stats_as_dict_keeps_every_field_in_order(session: Session, seeded: Seeded) -> None:
    stats = results.scatter(session, run_id=seeded.run_ids["multi"], by="mass")[0]
    d = stats.as_dict()
    assert list(d) == [
        "axis", "mass_lo", "mass_hi", "z_lo", "z_hi", "n", "bias_dex", "sigma_lnm",
        "p16_dex", "p50_dex", "p84_dex",
    ]  # fmt: skip
    assert d["n"] == stats.n > 0 and d["sigma_lnm"] == stats.sigma_lnm and d["axis"] == "mass"


def test_a_run_without_predictions_says_it_predicted_no_catalogue(
    session: Session, seeded: Seeded
) -> None:
    run = _finished_run(session, "no-predictions")
    with pytest.raises(CatalogueNotFoundError, match=r"it predicted catalogue\(s\) none$"):
        results.scatter(session, run_id=run.id, catalogue_id=seeded.catalogue_id)


def test_summary_by_redshift_matches_scatter_by_z_and_names_a_wrong_axis(
    session: Session, seeded: Seeded
) -> None:
    results.refresh(session)
    run_id = seeded.run_ids["multi"]
    rows = [r for r in results.summary(session, axis="z", source="run") if r["run_id"] == run_id]
    rows = [r for r in rows if r["input_domain"] == "mock"]
    live = results.scatter(session, run_id=run_id, by="z")
    assert [r["axis"] for r in rows] == ["z"] * len(live)
    assert [(r["bin_lo"], r["bin_hi"], r["n"]) for r in rows] == [
        (s.z_lo, s.z_hi, s.n) for s in live
    ]
    with pytest.raises(BinEdgesError, match=r"unknown summary axis 'mass_z'; choose one of all"):
        results.summary(session, axis="mass_z")  # type: ignore[arg-type]


def test_scatter_names_a_wrong_axis_and_the_right_ones(session: Session, seeded: Seeded) -> None:
    with pytest.raises(
        BinEdgesError, match=r"^unknown axis 'redshift'; choose one of mass, z, mass_z, all$"
    ):
        results.scatter(session, run_id=seeded.run_ids["multi"], by="redshift")  # type: ignore[arg-type]


def test_bad_edges_are_refused_with_the_defaults_as_an_example() -> None:
    with pytest.raises(
        BinEdgesError, match=r"^z_edges must hold .* got \[0\.3\]\. Example: 0\.0,0\.15,0\.3,0\.5$"
    ):
        results.check_edges([0.3], "z_edges", results.Z_EDGES)
    assert results.check_edges(None, "z_edges", results.Z_EDGES) == [0.0, 0.15, 0.3, 0.5]
    assert results.check_edges([1, "2", float("inf")], "x", (0, 1)) == [1.0, 2.0, float("inf")]


def test_an_unknown_run_or_proxy_lists_what_there_is(session: Session, seeded: Seeded) -> None:
    newest = max(seeded.run_ids.values())
    with pytest.raises(
        RunNotFoundError,
        match=rf"no model run with id 999999; latest run ids: \[{newest}, .*\] \(`clustermass query runs` lists them\)",
    ):
        results.scatter(session, run_id=999999)
    with pytest.raises(BinEdgesError, match=r"^mass_edges must hold"):
        results.scatter(session, run_id=newest, by="mass", mass_edges=[14.0])
    with pytest.raises(BinEdgesError, match=r"^z_edges must hold"):
        results.scatter(session, run_id=newest, by="z", z_edges=[0.5, 0.1])
    from db import proxy_masses

    proxy_masses.fit_proxy_estimates(session, catalogue_id=seeded.catalogue_id, proxies=["T"])
    with pytest.raises(ProxyNotFoundError, match=r"\['T'\]$"):
        results.proxy_scatter(session, catalogue_id=seeded.catalogue_id, proxy="Y_SZ")
    # with nothing stored (inside this test's transaction), the messages say so
    session.execute(sa.text("DELETE FROM proxy_estimates"))
    with pytest.raises(
        ProxyNotFoundError, match=r"none \(fill them with db\.proxy_masses\.fit_proxy_estimates\)$"
    ):
        results.proxy_scatter(session, catalogue_id=seeded.catalogue_id, proxy="T")
    session.execute(sa.text("DELETE FROM model_runs"))
    with pytest.raises(RunNotFoundError, match=r"latest run ids: none \(`clustermass query runs`"):
        results.scatter(session, run_id=newest)
