"""Proxy-mass estimates, bootstrap intervals and cluster reports on a seeded database."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db import bootstrap, cluster_info, proxy_masses, results, tables
from db.errors import BinEdgesError, ClusterNotFoundError, ProxyFitError, ProxyNotFoundError
from tests.results_data import (
    EMPTY_MASS_BIN,
    PROXIES,
    RUNS,
    Seeded,
    numpy_bins,
    rolled_back_session,
    seeded_database,
)


@pytest.fixture(scope="module")
def results_db(admin_url: str) -> Iterator[tuple[str, Seeded]]:
    with seeded_database(admin_url, "cmproxy") as db:
        yield db


@pytest.fixture
def seeded(results_db: tuple[str, Seeded]) -> Seeded:
    return results_db[1]


@pytest.fixture
def session(results_db: tuple[str, Seeded]) -> Iterator[Session]:
    with rolled_back_session(results_db[0]) as s:
        yield s


# --- scaling relations --------------------------------------------------------------------


def test_ols_fit_recovers_slope_and_inverts_exactly() -> None:
    rng = np.random.default_rng(3)
    log_m = rng.uniform(13.5, 15.0, 5000)
    mu = (log_m - proxy_masses.PIVOT_LOG10_MASS) * math.log(10)
    s = np.exp(1.2 + 1.6 * mu + rng.normal(0, 0.4, log_m.size))
    fit = proxy_masses.fit_scaling_relation(log_m, s, proxy="L_X")
    assert fit.slope == pytest.approx(1.6, abs=0.03)
    assert fit.intercept == pytest.approx(1.2, abs=0.03)
    assert fit.sigma_lnm == pytest.approx(0.4 / 1.6, rel=0.05)
    # Noise-free data: the inversion returns the input masses.
    exact = np.exp(1.2 + 1.6 * mu)
    fit0 = proxy_masses.fit_scaling_relation(log_m, exact)
    np.testing.assert_allclose(proxy_masses.invert_scaling_relation(exact, fit0), log_m, atol=1e-9)


def test_ols_fit_refuses_what_cannot_be_inverted() -> None:
    with pytest.raises(ProxyFitError, match="need >= 3"):
        proxy_masses.fit_scaling_relation(np.array([14.0, 14.1]), np.array([1.0, 2.0]))
    with pytest.raises(ProxyFitError, match="one mass"):
        proxy_masses.fit_scaling_relation(np.full(5, 14.0), np.arange(1.0, 6.0))
    with pytest.raises(ProxyFitError, match="not invertible"):
        proxy_masses.fit_scaling_relation(np.linspace(14, 15, 5), np.ones(5))


def test_proxy_estimates_per_snapshot_and_their_sql_scatter(
    session: Session, seeded: Seeded
) -> None:
    fits = proxy_masses.fit_proxy_estimates(session, catalogue_id=seeded.catalogue_id)
    assert {(f.proxy, f.fit_group) for f in fits} == {
        (p, f"snapshot:{k}") for p in PROXIES for k in range(3)
    }
    for f in fits:  # slopes as generated, within ~4 standard errors
        alpha, sig = PROXIES[f.proxy]
        assert f.slope == pytest.approx(alpha, abs=4 * sig / (0.25 * math.log(10) * f.n**0.5))
    rows = session.execute(
        sa.select(tables.ProxyEstimate.cluster_id, tables.ProxyEstimate.log10_m500c_est).where(
            tables.ProxyEstimate.proxy == "L_X"
        )
    ).all()
    est = dict(rows)
    idx = [i for i, c in enumerate(seeded.cluster_ids) if int(c) in est]
    assert len(idx) == len(seeded.cluster_ids)  # every cluster with a mass and a value
    resid = np.array([est[int(seeded.cluster_ids[i])] for i in idx]) - seeded.log10_m[idx]
    stats = results.proxy_scatter(session, catalogue_id=seeded.catalogue_id, proxy="L_X", by="mass")
    ref = numpy_bins(seeded.log10_m[idx], resid, list(results.MASS_EDGES))
    for s, r in zip(stats, ref, strict=True):
        assert s.n == r["n"]
        if r["n"] > 1:
            assert s.sigma_lnm == pytest.approx(r["sigma_lnm"], abs=1e-9)
            np.testing.assert_allclose([s.p16_dex, s.p50_dex, s.p84_dex], r["pct"], atol=1e-9)
    (overall,) = results.proxy_scatter(
        session, catalogue_id=seeded.catalogue_id, proxy="L_X", by="all"
    )
    # In-sample OLS per snapshot: zero mean residual; scatter sigma_ln_s / alpha (paper).
    assert overall.bias_dex == pytest.approx(0.0, abs=1e-9)
    assert overall.sigma_lnm == pytest.approx(0.40 / 1.6, rel=0.15)
    z_stats = results.proxy_scatter(session, catalogue_id=seeded.catalogue_id, proxy="T", by="z")
    assert sum(s.n for s in z_stats) == len(seeded.cluster_ids)
    # Refitting replaces rather than duplicates.
    proxy_masses.fit_proxy_estimates(session, catalogue_id=seeded.catalogue_id, proxies=["T"])
    n = session.scalar(sa.select(sa.func.count()).select_from(tables.ProxyEstimate))
    assert n == 2 * len(seeded.cluster_ids)


def test_unknown_proxy_lists_the_ones_present(session: Session, seeded: Seeded) -> None:
    with pytest.raises(ProxyNotFoundError, match=r"\['L_X', 'T'\]"):
        proxy_masses.fit_proxy_estimates(
            session, catalogue_id=seeded.catalogue_id, proxies=["Y_SZ"]
        )
    with pytest.raises(ProxyNotFoundError, match="no proxy mass estimates"):
        results.proxy_scatter(session, catalogue_id=seeded.catalogue_id, proxy="T")


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_interval_has_the_expected_width() -> None:
    rng = np.random.default_rng(11)
    r = rng.normal(0, 0.07, 2000)
    est, lo, hi = bootstrap.bootstrap_sigma_lnm(
        r, n_resamples=2000, ci_level=0.68, rng=np.random.default_rng(1)
    )
    assert lo < est < hi
    # Gaussian: the standard error of a standard deviation is sigma / sqrt(2 (N - 1)).
    expected = 2 * est / math.sqrt(2 * (r.size - 1))
    assert hi - lo == pytest.approx(expected, rel=0.15)
    assert bootstrap.bootstrap_sigma_lnm(
        r[:1], n_resamples=10, ci_level=0.68, rng=np.random.default_rng(1)
    ) == (None, None, None)


def test_store_bootstrap_matches_sql_and_upserts(session: Session, seeded: Seeded) -> None:
    run_id = seeded.run_ids["multimodal"]
    kwargs = {"run_id": run_id, "axis": "mass", "n_resamples": 200, "seed": 5}
    first = bootstrap.store_bootstrap(session, **kwargs)
    live = results.scatter(session, run_id=run_id, by="mass")
    assert [b.n for b in first] == [s.n for s in live]
    for b, s in zip(first, live, strict=True):
        if s.n > 1:
            assert b.sigma_lnm == pytest.approx(s.sigma_lnm, abs=1e-9)
            assert b.bias_dex == pytest.approx(s.bias_dex, abs=1e-9)
            assert b.ci_lo < b.sigma_lnm < b.ci_hi
    empty = [b for b in first if (b.bin_lo, b.bin_hi) == EMPTY_MASS_BIN]
    assert empty[0].n == 0 and empty[0].ci_lo is None
    again = bootstrap.store_bootstrap(session, **kwargs)
    assert again == first  # same seed, same data: identical
    count = session.scalar(sa.select(sa.func.count()).select_from(tables.ScatterBootstrap))
    assert count == len(first)
    other = bootstrap.store_bootstrap(session, **{**kwargs, "seed": 6})
    assert [b.ci_lo for b in other if b.n > 1] != [b.ci_lo for b in first if b.n > 1]
    stored = session.execute(
        sa.text("SELECT n, ci_lo FROM v_scatter_bootstrap WHERE run_id = :r AND seed = 5"),
        {"r": run_id},
    ).all()
    assert sorted(stored, key=lambda r: (r.n, r.ci_lo or 0)) == sorted(
        [(b.n, b.ci_lo) for b in first], key=lambda r: (r[0], r[1] or 0)
    )


# --- one cluster ----------------------------------------------------------------------------


def test_cluster_report_has_everything(session: Session, seeded: Seeded) -> None:
    proxy_masses.fit_proxy_estimates(session, catalogue_id=seeded.catalogue_id)
    name = f"syn synthetic {1:04d}"  # case-insensitive
    (rep,) = cluster_info.cluster_report(session, name)
    assert rep.cluster["cluster_id"] == int(seeded.cluster_ids[1])
    assert rep.cluster["log10_m500c"] == pytest.approx(seeded.log10_m[1])
    assert {o["name"] for o in rep.observables} == set(PROXIES)
    assert len(rep.predictions) == len(RUNS)
    assert {p["proxy"] for p in rep.proxy_estimates} == set(PROXIES)
    assert rep.attributions[0]["r_core_over_r500c"] == pytest.approx(0.285)
    by_ext = cluster_info.cluster_report(session, "synthetic-1")
    assert by_ext[0].cluster == rep.cluster


def test_cluster_not_found_suggests_names(session: Session, seeded: Seeded) -> None:
    with pytest.raises(ClusterNotFoundError, match="similar names: Abell 3158"):
        cluster_info.cluster_report(session, "abell")


def test_proxy_scatter_on_every_axis_with_the_callers_edges(
    session: Session, seeded: Seeded
) -> None:
    """by='z' and by='mass_z' use the edges given (not the defaults) and say which bin is which."""
    proxy_masses.fit_proxy_estimates(session, catalogue_id=seeded.catalogue_id, proxies=["L_X"])
    est = dict(
        session.execute(
            sa.select(tables.ProxyEstimate.cluster_id, tables.ProxyEstimate.log10_m500c_est).where(
                tables.ProxyEstimate.proxy == "L_X"
            )
        ).all()
    )
    resid = np.array([est[int(c)] for c in seeded.cluster_ids]) - seeded.log10_m
    mass_edges, z_edges = [13.6, 14.0, 14.9], [0.02, 0.12, 0.35]
    kw = {"catalogue_id": seeded.catalogue_id, "proxy": "L_X"}

    by_z = results.proxy_scatter(session, by="z", z_edges=z_edges, **kw)
    assert [(s.axis, s.mass_lo, s.z_lo, s.z_hi) for s in by_z] == [
        ("z", None, 0.02, 0.12),
        ("z", None, 0.12, 0.35),
    ]
    for s, r in zip(by_z, numpy_bins(seeded.redshift, resid, z_edges), strict=True):
        assert s.n == r["n"] > 1
        assert s.sigma_lnm == pytest.approx(r["sigma_lnm"], abs=1e-9)

    by_mz = results.proxy_scatter(
        session, by="mass_z", mass_edges=mass_edges, z_edges=z_edges, **kw
    )
    assert len(by_mz) == 4 and {s.axis for s in by_mz} == {"mass_z"}
    for s in by_mz:
        sel = (seeded.log10_m >= s.mass_lo) & (seeded.log10_m < s.mass_hi)
        sel &= (seeded.redshift >= s.z_lo) & (seeded.redshift < s.z_hi)
        assert s.n == int(sel.sum())
        if s.n > 1:
            assert s.sigma_lnm == pytest.approx(np.std(resid[sel], ddof=1) * np.log(10), abs=1e-9)
    assert [(s.mass_lo, s.z_lo) for s in by_mz] == [
        (13.6, 0.02),
        (13.6, 0.12),
        (14.0, 0.02),
        (14.0, 0.12),
    ]

    by_mass = results.proxy_scatter(session, by="mass", mass_edges=mass_edges, **kw)
    assert [(s.axis, s.mass_lo, s.mass_hi, s.z_lo) for s in by_mass] == [
        ("mass", 13.6, 14.0, None),
        ("mass", 14.0, 14.9, None),
    ]

    with pytest.raises(
        BinEdgesError, match=r"unknown axis 'massz'; choose one of mass, z, mass_z, all"
    ):
        results.proxy_scatter(session, by="massz", **kw)  # type: ignore[arg-type]
    with pytest.raises(BinEdgesError, match=r"^mass_edges"):
        results.proxy_scatter(session, by="mass", mass_edges=[14.0, 13.0], **kw)
    with pytest.raises(BinEdgesError, match=r"^z_edges"):
        results.proxy_scatter(session, by="z", z_edges=[0.3], **kw)
