"""Synthetic results for the tests of the results SQL (not a test module).

One simulation catalogue of clusters in three snapshots with a steep mass function, three model
runs with Gaussian residuals of known bias and scatter, a few 'observed' predictions, clusters
without a mass, two scalar proxies following power laws with known slope and scatter, and an
attribution summary. The mass bin [14.25, 14.5) is left empty on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db import tables

SNAP_Z = {0: 0.07, 1: 0.25, 2: 0.45}
RUNS = {  # name: (kind, bias [dex], scatter [dex])
    "single": ("single", -0.002, 0.077),
    "multi": ("multi", -0.001, 0.070),
    "multimodal": ("multimodal", 0.0, 0.069),
}
PROXIES = {"T": (0.58, 0.12), "L_X": (1.6, 0.40)}  # name: (slope alpha, sigma of ln s)
EMPTY_MASS_BIN = (14.25, 14.5)


@dataclass
class Seeded:
    """Ids and the exact arrays written, for numpy comparisons."""

    catalogue_id: int
    cluster_ids: np.ndarray
    log10_m: np.ndarray
    redshift: np.ndarray
    snapshot: np.ndarray
    run_ids: dict[str, int] = field(default_factory=dict)
    pred: dict[str, np.ndarray] = field(default_factory=dict)
    pred_err: dict[str, np.ndarray] = field(default_factory=dict)
    observed_cluster_ids: np.ndarray | None = None
    massless_cluster_ids: np.ndarray | None = None
    outlier_cluster_id: int = 0


def _masses(rng: np.random.Generator, n: int) -> np.ndarray:
    m = 13.5 + rng.exponential(0.25, n)
    m = m[(m < EMPTY_MASS_BIN[0]) | ((m >= EMPTY_MASS_BIN[1]) & (m < 15.1))]
    return m


def seed(session: Session, *, n: int = 400, seed: int = 7, name: str = "synthetic") -> Seeded:
    """Write the synthetic catalogue, runs, predictions and observables; return what was written."""
    rng = np.random.default_rng(seed)
    log_m = _masses(rng, n)
    # Guarantee the top mass bin [14.5, 15.1) holds a few clusters.
    log_m = np.concatenate([log_m, [14.6, 14.8, 15.0]])
    n = log_m.size
    snap = rng.integers(0, 3, n)
    z = np.array([SNAP_Z[s] for s in snap]) + rng.uniform(-0.02, 0.02, n)
    cat = tables.Catalogue(name=name, kind="simulation", cosmology={"name": "Planck18"}, seed=seed)
    session.add(cat)
    session.flush()
    clusters = [
        tables.Cluster(
            catalogue_id=cat.id,
            external_id=f"{name}-{i}",
            name=f"SYN {name} {i:04d}",
            snapshot=int(snap[i]),
            redshift=float(z[i]),
            log10_m500c=float(log_m[i]),
            log10_m500c_err=0.02,
        )
        for i in range(n)
    ]
    # Clusters without a mass (e.g. survey entries): no residual, never in a bin.
    clusters += [
        tables.Cluster(
            catalogue_id=cat.id, external_id=f"{name}-nomass-{k}", redshift=0.2, snapshot=1
        )
        for k in range(3)
    ]
    session.add_all(clusters)
    session.flush()
    ids = np.array([c.id for c in clusters[:n]])
    out = Seeded(cat.id, ids, log_m, z, snap)
    out.massless_cluster_ids = np.array([c.id for c in clusters[n:]])

    for run_name, (kind, bias, sigma) in RUNS.items():
        run = tables.ModelRun(
            run_key=f"{name}-{run_name}",
            name=f"{run_name} CNN",
            kind=kind,
            config={"network": kind},
            seed=seed,
            fold_scheme="octant",
            status="done",
        )
        session.add(run)
        session.flush()
        pred = log_m + rng.normal(bias, sigma, n)
        err = np.full(n, 0.07)
        out.run_ids[run_name], out.pred[run_name], out.pred_err[run_name] = run.id, pred, err
        rows = [
            {
                "run_id": run.id,
                "cluster_id": int(ids[i]),
                "fold": int(i % 8),
                "log10_m500c_pred": float(pred[i]),
                "log10_m500c_pred_err": float(err[i]),
                "input_domain": "mock",
            }
            for i in range(n)
        ]
        rows += [
            {
                "run_id": run.id,
                "cluster_id": int(c),
                "fold": None,
                "log10_m500c_pred": 14.0,
                "input_domain": "mock",
            }
            for c in out.massless_cluster_ids
        ]
        session.execute(sa.insert(tables.Prediction), rows)

    # One obvious > 3 sigma outlier in the multi run, and 'observed' predictions that the
    # default domain ('mock') must leave out of the bins.
    multi = out.run_ids["multi"]
    out.outlier_cluster_id = int(ids[0])
    session.execute(
        sa.update(tables.Prediction)
        .where(tables.Prediction.run_id == multi, tables.Prediction.cluster_id == int(ids[0]))
        .values(log10_m500c_pred=float(log_m[0]) + 1.0)
    )
    out.pred["multi"][0] = log_m[0] + 1.0
    obs_cat = tables.Catalogue(name=f"{name}-survey", kind="survey", cosmology={"name": "x"})
    session.add(obs_cat)
    session.flush()
    obs = [
        tables.Cluster(
            catalogue_id=obs_cat.id,
            external_id=f"obs-{k}",
            name=f"Abell {3158 + k}",
            redshift=0.06,
            log10_m500c=14.3,
        )
        for k in range(2)
    ]
    session.add_all(obs)
    session.flush()
    out.observed_cluster_ids = np.array([c.id for c in obs])
    session.execute(
        sa.insert(tables.Prediction),
        [
            {
                "run_id": multi,
                "cluster_id": c.id,
                "log10_m500c_pred": 14.9,
                "input_domain": "observed",
                "instrument": "ROSAT PSPC",
            }
            for c in obs
        ],
    )

    # Scalar proxies: ln s = pi_snap + alpha * ln(M / 2e14) + N(0, sigma).
    mu = (log_m - np.log10(2e14)) * np.log(10)
    obs_rows = []
    for proxy, (alpha, sig) in PROXIES.items():
        pi = np.array([0.5, 0.7, 0.9])[snap]
        s = np.exp(pi + alpha * mu + rng.normal(0, sig, n))
        obs_rows += [
            {"cluster_id": int(ids[i]), "name": proxy, "value": float(s[i]), "unit": ""}
            for i in range(n)
        ]
    session.execute(sa.insert(tables.Observable), obs_rows)
    session.add(
        tables.Attribution(
            run_id=multi,
            cluster_id=int(ids[1]),
            method="saliency",
            r_core_over_r500c=0.285,
            median_saliency_agn=10**-3.91,
            median_saliency_icm=10**-3.77,
            band_fractions=[0.34, 0.33, 0.33],
        )
    )
    session.flush()
    return out


def numpy_bins(x: np.ndarray, r: np.ndarray, edges: list[float]) -> list[dict]:
    """Reference statistics per half-open bin [lo, hi), as the SQL functions define them."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = r[(x >= lo) & (x < hi)]
        n = sel.size
        out.append(
            {
                "n": n,
                "bias_dex": float(sel.mean()) if n else None,
                "sigma_lnm": float(np.std(sel, ddof=1) * np.log(10)) if n > 1 else None,
                "pct": np.percentile(sel, [16, 50, 84]) if n else None,
            }
        )
    return out


@contextmanager
def seeded_database(admin_url: str, prefix: str = "cmresults") -> Iterator[tuple[str, Seeded]]:
    """A throwaway database at the migration head holding :func:`seed`'s data, committed."""
    from db import migrate
    from tests.conftest import create_database, drop_database

    url = create_database(admin_url, prefix)
    try:
        migrate.upgrade(url, "head")
        engine = sa.create_engine(url)
        with Session(engine) as session, session.begin():
            data = seed(session)
            session.execute(sa.text("SELECT refresh_results()"))
        engine.dispose()
        yield url, data
    finally:
        drop_database(admin_url, url)


@contextmanager
def rolled_back_session(url: str) -> Iterator[Session]:
    """A session on ``url`` whose work is rolled back at the end (savepoints for commits)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
                yield s
            trans.rollback()
    finally:
        engine.dispose()


@dataclass
class TwoCatalogueRun:
    """A run trained on the seeded catalogue that also predicted a second mock catalogue."""

    run_id: int
    other_catalogue_id: int
    n_training: int  # out-of-fold predictions of the training catalogue with a mass
    n_other: int
    resid_training: np.ndarray
    resid_other: np.ndarray


def add_two_catalogue_run(
    session: Session, seeded: Seeded, *, n_other: int = 40
) -> TwoCatalogueRun:
    """Write a run (``catalogue_id`` = the seeded catalogue) with predictions of both catalogues.

    The second catalogue's residuals are offset by +0.5 dex, so mixing them in changes N, the
    bias and the scatter.
    """
    rng = np.random.default_rng(99)
    other = tables.Catalogue(name="second-mock", kind="simulation", cosmology={"name": "x"})
    session.add(other)
    session.flush()
    log_m = 13.6 + rng.exponential(0.2, n_other)
    clusters = [
        tables.Cluster(
            catalogue_id=other.id,
            external_id=f"second-{k}",
            redshift=0.1 + 0.3 * k / n_other,
            log10_m500c=float(log_m[k]),
        )
        for k in range(n_other)
    ]
    session.add_all(clusters)
    run = tables.ModelRun(
        run_key="two-catalogues",
        name="two-catalogue CNN",
        kind="single",
        catalogue_id=seeded.catalogue_id,
        config={},
        seed=1,
        fold_scheme="octant",
        status="done",
    )
    session.add(run)
    session.flush()
    resid_train = rng.normal(0.0, 0.08, seeded.cluster_ids.size)
    resid_other = rng.normal(0.5, 0.2, n_other)
    rows = [
        {"run_id": run.id, "cluster_id": int(c), "fold": i % 8,
         "log10_m500c_pred": float(seeded.log10_m[i] + resid_train[i])}
        for i, c in enumerate(seeded.cluster_ids)
    ]  # fmt: skip
    rows += [
        {"run_id": run.id, "cluster_id": c.id, "fold": None,
         "log10_m500c_pred": float(log_m[k] + resid_other[k])}
        for k, c in enumerate(clusters)
    ]  # fmt: skip
    session.execute(sa.insert(tables.Prediction), rows)
    session.flush()
    return TwoCatalogueRun(
        run.id, other.id, seeded.cluster_ids.size, n_other, resid_train, resid_other
    )
