"""Latency of the binned-scatter SQL functions over 1e6 synthetic predictions.

Creates a throwaway database on the server of ``--admin-url``, migrates it to head, loads
synthetic clusters and predictions with ``COPY`` (psycopg2 ``copy_expert``), ``VACUUM ANALYZE``s
it and times warm queries (client round trip, rows fetched) ``--repeats`` times each:

* ``scatter_by_mass(run)``, ``scatter_by_z(run)``, ``scatter_by_mass_z(run)`` for three runs in
  one table: one of ``--n-predictions`` (default 1e6; every prediction of the run is
  aggregated), one of ``--small-run`` (1e5) and one of the paper's size (3,285);
* a read of the materialised summary ``v_scatter_summary`` (all runs, default bins);
* baseline 1: the same statistics computed by joining predictions with clusters (the design
  without the trigger-kept mass/redshift copies);
* baseline 2: fetching the big run's residuals to the client and binning them with numpy;
* baseline 3: the functions with the two covering indexes of revision 0002 dropped.

Ratios are against the measurements of the same invocation. This is a benchmark, not a test:
run it by hand (``python benchmarks/bench_scatter_query.py``) and paste the table into
docs/benchmarks.md with the machine description.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import migrate  # noqa: E402

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PAPER_SIZE = 3285  # clusters in Ho et al. (2023)
MASS_EDGES = np.array([13.5, 13.75, 14.0, 14.25, 14.5, 15.1])


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


JOIN_BASELINE = """
SELECT width_bucket(c.log10_m500c, '{13.5,13.75,14.0,14.25,14.5,15.1}'::float8[]) AS bin,
       count(*), avg(p.log10_m500c_pred - c.log10_m500c),
       stddev_samp(p.log10_m500c_pred - c.log10_m500c) * ln(10::float8),
       percentile_cont('{0.16,0.5,0.84}'::float8[])
           WITHIN GROUP (ORDER BY p.log10_m500c_pred - c.log10_m500c)
FROM predictions p JOIN clusters c ON c.id = p.cluster_id
WHERE p.run_id = %s AND p.input_domain = 'mock' AND c.log10_m500c IS NOT NULL
GROUP BY 1 ORDER BY 1"""


def create_database(admin_url: str) -> str:
    name = f"cmbench_{os.getpid()}_{int(time.time())}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


def _copy(cur, table: str, columns: list[str], arrays: list[np.ndarray], fmt: str) -> None:
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack(arrays), fmt=fmt, delimiter="\t")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def load(url: str, n_big: int, n_small: int, seed: int) -> dict[str, int]:
    """Load one catalogue, ``n_big`` clusters and two runs (``n_big`` and ``n_small`` preds)."""
    rng = np.random.default_rng(seed)
    # Steep mass function above 10^13.5 (exponential in log M, ~ dn/dlnM slope -2.5) and a
    # uniform redshift range like the paper's snapshots (z = 0.066-0.47).
    log_m = np.minimum(13.5 + rng.exponential(0.17, n_big), 15.09)
    z = rng.uniform(0.066, 0.47, n_big)
    snap = np.floor((z - 0.066) / 0.0368).astype(int)
    ids = np.arange(1, n_big + 1)
    with psycopg2.connect(_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO catalogues (id, name, kind, cosmology) "
            "VALUES (1, 'bench', 'simulation', '{}')"
        )
        cur.execute(
            "INSERT INTO model_runs (id, run_key, name, kind, config, seed, fold_scheme, status) "
            "VALUES (1, 'big', 'big', 'multi', '{}', 0, 'octant', 'done'), "
            "(2, 'small', 'small', 'single', '{}', 0, 'octant', 'done'), "
            "(3, 'paper', 'paper', 'multimodal', '{}', 0, 'octant', 'done')"
        )
        t0 = time.perf_counter()
        _copy(
            cur,
            "clusters",
            ["id", "catalogue_id", "external_id", "snapshot", "redshift", "log10_m500c"],
            [ids, np.ones(n_big), ids, snap, z, log_m],
            "%d\t%d\t%d\t%d\t%.6f\t%.6f",
        )
        t_clusters = time.perf_counter() - t0
        pred = log_m + rng.normal(-0.0015, 0.07, n_big)
        t0 = time.perf_counter()
        _copy(
            cur,
            "predictions",
            ["run_id", "cluster_id", "fold", "log10_m500c_pred"],
            [np.ones(n_big), ids, rng.integers(0, 8, n_big), pred],
            "%d\t%d\t%d\t%.6f",
        )
        for run_id, n in ((2, n_small), (3, PAPER_SIZE)):
            sub = rng.choice(ids, n, replace=False)
            _copy(
                cur,
                "predictions",
                ["run_id", "cluster_id", "fold", "log10_m500c_pred"],
                [np.full(n, run_id), sub, rng.integers(0, 8, n), pred[sub - 1]],
                "%d\t%d\t%d\t%.6f",
            )
        t_preds = time.perf_counter() - t0
        for table in ("catalogues", "clusters", "model_runs", "predictions"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    conn = psycopg2.connect(_dsn(url))
    conn.autocommit = True
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()
    t_vacuum = time.perf_counter() - t0
    n_preds = n_big + n_small + PAPER_SIZE
    print(
        f"COPY: {n_big:,} clusters in {t_clusters:.1f} s, {n_preds:,} predictions in "
        f"{t_preds:.1f} s (incl. index maintenance); VACUUM ANALYZE {t_vacuum:.1f} s"
    )
    return {"big": 1, "small": 2, "paper": 3}


def copy_cost(conn, n: int, seed: int) -> dict[str, float]:
    """Seconds to COPY ``n`` predictions of a new run, with and without the copy trigger."""
    rng = np.random.default_rng(seed + 1)
    out = {}
    with conn.cursor() as cur:
        cur.execute("SELECT max(id) FROM clusters")
        n_clusters = cur.fetchone()[0]
        for run_id, trigger in ((90, True), (91, False)):
            cur.execute(
                "INSERT INTO model_runs (id, run_key, kind, config, seed, fold_scheme) "
                "VALUES (%s, %s, 'single', '{}', 0, 'none')",
                (run_id, f"copy{run_id}"),
            )
            ids = rng.choice(np.arange(1, n_clusters + 1), n, replace=False)
            if not trigger:
                cur.execute("ALTER TABLE predictions DISABLE TRIGGER predictions_from_clusters")
            t0 = time.perf_counter()
            _copy(
                cur,
                "predictions",
                ["run_id", "cluster_id", "log10_m500c_pred"],
                [np.full(n, run_id), ids, rng.normal(14, 0.3, n)],
                "%d\t%d\t%.6f",
            )
            out["with trigger" if trigger else "without trigger"] = time.perf_counter() - t0
            if not trigger:
                cur.execute("ALTER TABLE predictions ENABLE TRIGGER predictions_from_clusters")
            cur.execute("DELETE FROM model_runs WHERE id = %s", (run_id,))
    return out


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load}"


def _summary(ms: list[float]) -> tuple[float, float, float, float]:
    q = np.percentile(ms, [50, 90, 99])
    return float(q[0]), float(q[1]), float(q[2]), min(ms)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--admin-url",
        default=os.environ.get("CLUSTERMASS_TEST_DATABASE_URL", LOCAL_ADMIN_URL),
        help="URL of a database on a server where this user may CREATE DATABASE",
    )
    ap.add_argument("--n-predictions", type=float, default=1e6)
    ap.add_argument("--small-run", type=float, default=1e5)
    ap.add_argument("--repeats", type=int, default=50, help="timed runs per query")
    ap.add_argument(
        "--big-repeats", type=int, default=20, help="timed runs per query on the big run"
    )
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = ap.parse_args(argv)
    n_big, n_small = int(args.n_predictions), int(args.small_run)

    machine_start = _machine()
    url = create_database(args.admin_url)
    try:
        t0 = time.perf_counter()
        migrate.upgrade(url, "head")
        print(f"database {make_url(url).database}: migrated in {time.perf_counter() - t0:.1f} s")
        runs = load(url, n_big, n_small, args.seed)
        conn = psycopg2.connect(_dsn(url))
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT version()")
        server = cur.fetchone()[0]

        def q(sql: str, *params: object) -> Callable[[], object]:
            def run() -> object:
                cur.execute(sql, params)
                return cur.fetchall()

            return run

        sizes = {runs["big"]: n_big, runs["small"]: n_small, runs["paper"]: PAPER_SIZE}
        cases: dict[str, Callable[[], object]] = {}
        for run_id, n in sizes.items():
            for fn in ("scatter_by_mass", "scatter_by_z", "scatter_by_mass_z"):
                cases[f"{fn}, run of {n:,}"] = q(f"SELECT * FROM {fn}(%s)", run_id)
        for run_id, n in sizes.items():
            # The same statistics joined with clusters (no trigger-kept copies): the design
            # revision 0002 replaced (baseline 1).
            cases[f"mass bins via JOIN clusters, run of {n:,} (baseline 1)"] = q(
                JOIN_BASELINE, run_id
            )
        cases["v_scatter_summary, all runs, axis 'mass'"] = q(
            "SELECT * FROM v_scatter_summary WHERE axis = 'mass' ORDER BY subject, bin"
        )

        def client_numpy() -> object:
            cur.execute(
                "SELECT log10_m500c, residual_dex FROM v_residuals "
                "WHERE run_id = %s AND input_domain = 'mock'",
                (runs["big"],),
            )
            a = np.array(cur.fetchall(), dtype=float)
            idx = np.searchsorted(MASS_EDGES, a[:, 0], side="right")
            return [
                (np.std(r, ddof=1), np.percentile(r, [16, 50, 84]))
                for r in (a[idx == i, 1] for i in range(1, len(MASS_EDGES)))
            ]

        results: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        cur.execute("SELECT refresh_results()")
        print(f"refresh_results(): {time.perf_counter() - t0:.1f} s")

        def reps(name: str) -> int:
            return args.big_repeats if f"run of {n_big:,}" in name else args.repeats

        for name, fn in cases.items():
            results[name] = timed(fn, reps(name))
        results[f"client fetch + numpy, run of {n_big:,} (baseline 2)"] = timed(
            client_numpy, max(3, args.big_repeats // 4), warmup=1
        )
        # Session tuning for very large runs: in-memory percentile sorts, no JIT compilation.
        cur.execute("SET work_mem = '64MB'")
        cur.execute("SET jit = off")
        for fn in ("scatter_by_mass", "scatter_by_mass_z"):
            name = f"{fn}, run of {n_big:,}, SET work_mem = '64MB', jit = off"
            results[name] = timed(q(f"SELECT * FROM {fn}(%s)", runs["big"]), args.big_repeats)
        cur.execute("RESET work_mem")
        cur.execute("RESET jit")
        write_cost = copy_cost(conn, n_small, args.seed)
        plans = {}
        for run_id, n in sizes.items():
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM scatter_by_mass(%s)", (run_id,))
            plans[n] = "\n".join(r[0] for r in cur.fetchall())
        cur.execute("DROP INDEX ix_predictions_run_mass")
        cur.execute("DROP INDEX ix_predictions_run_redshift")
        cur.execute("ANALYZE predictions")
        for n in sizes.values():
            results[f"scatter_by_mass, run of {n:,}, no covering indexes (baseline 3)"] = timed(
                cases[f"scatter_by_mass, run of {n:,}"], reps(f"run of {n:,}")
            )
        conn.close()
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            drop_database(args.admin_url, url)

    ref = {n: statistics.median(results[f"scatter_by_mass, run of {n:,}"]) for n in sizes.values()}
    print()
    print(f"machine at start: {machine_start}")
    print(f"machine at end:   {_machine()}")
    print(
        f"python {platform.python_version()}; repeats={args.repeats} ({args.big_repeats} on the "
        "big run), warm, after 3 warm-ups; latencies are client round trips (rows fetched)"
    )
    print(f"server: {server}")
    print("ratio: p50 / p50 of scatter_by_mass on a run of the same size (same invocation)")
    print()
    print("| query | runs | p50 ms | p90 ms | p99 ms | min ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, ms in results.items():
        p50, p90, p99, lo = _summary(ms)
        same = [n for n in ref if f"run of {n:,}" in name]
        ratio = f"{p50 / ref[same[0]]:.2f}" if same else ""
        print(f"| {name} | {len(ms)} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {lo:.1f} | {ratio} |")
    print()
    print(
        f"COPY of {n_small:,} predictions of a new run (4 indexes, foreign keys): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in write_cost.items())
    )
    for n, plan in plans.items():
        print()
        print(f"plan of scatter_by_mass on the run of {n:,} (with the covering indexes):")
        print(plan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
