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
* baseline 3: the plain query with the two covering indexes of revision 0002 dropped;
* baseline 4: the plain query of revision 0010 (``scatter_by_mass_exact`` / ``_by_z_exact``),
  i.e. the functions without the scatter index of revision 0011 (built and timed per run here).

Ratios are against the measurements of the same invocation. This is a benchmark, not a test:
``python benchmarks/bench_scatter_query.py [--json out.json]`` prints the table;
``python -m benchmarks --only sql`` writes it into docs/benchmarks.md with the machine
description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg2
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._db import (  # noqa: E402
    copy_columns,
    create_database,
    default_admin_url,
    drop_database,
    dsn,
    server_description,
)
from db import migrate  # noqa: E402

PAPER_SIZE = 3285  # clusters in Ho et al. (2023)
MASS_EDGES = np.array([13.5, 13.75, 14.0, 14.25, 14.5, 15.1])


JOIN_BASELINE = """
SELECT width_bucket(c.log10_m500c, '{13.5,13.75,14.0,14.25,14.5,15.1}'::float8[]) AS bin,
       count(*), avg(p.log10_m500c_pred - c.log10_m500c),
       stddev_samp(p.log10_m500c_pred - c.log10_m500c) * ln(10::float8),
       percentile_cont('{0.16,0.5,0.84}'::float8[])
           WITHIN GROUP (ORDER BY p.log10_m500c_pred - c.log10_m500c)
FROM predictions p JOIN clusters c ON c.id = p.cluster_id
WHERE p.run_id = %s AND p.input_domain = 'mock' AND c.log10_m500c IS NOT NULL
GROUP BY 1 ORDER BY 1"""


def load(url: str, n_big: int, n_small: int, seed: int) -> dict[str, float]:
    """Load one catalogue, ``n_big`` clusters and three runs (``n_big``, ``n_small``, 3,285).

    Returns the seconds of each step (``copy_clusters_s``, ``copy_predictions_s``,
    ``vacuum_analyze_s``); the runs have ids 1 (big), 2 (small) and 3 (paper).
    """
    rng = np.random.default_rng(seed)
    # Steep mass function above 10^13.5 (exponential in log M, ~ dn/dlnM slope -2.5) and a
    # uniform redshift range like the paper's snapshots (z = 0.066-0.47).
    log_m = np.minimum(13.5 + rng.exponential(0.17, n_big), 15.09)
    z = rng.uniform(0.066, 0.47, n_big)
    snap = np.floor((z - 0.066) / 0.0368).astype(int)
    ids = np.arange(1, n_big + 1)
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO catalogues (id, name, kind, cosmology) "
            "VALUES (1, 'bench', 'simulation', '{}')"
        )
        cur.execute(
            # each run records its training catalogue, as training does (the functions'
            # default catalogue)
            "INSERT INTO model_runs (id, run_key, name, kind, catalogue_id, config, seed, "
            "fold_scheme, status) "
            "VALUES (1, 'big', 'big', 'multi', 1, '{}', 0, 'octant', 'done'), "
            "(2, 'small', 'small', 'single', 1, '{}', 0, 'octant', 'done'), "
            "(3, 'paper', 'paper', 'multimodal', 1, '{}', 0, 'octant', 'done')"
        )
        t0 = time.perf_counter()
        copy_columns(
            cur,
            "clusters",
            ["id", "catalogue_id", "external_id", "snapshot", "redshift", "log10_m500c"],
            [ids, np.ones(n_big), ids, snap, z, log_m],
            "%d\t%d\t%d\t%d\t%.6f\t%.6f",
        )
        t_clusters = time.perf_counter() - t0
        pred = log_m + rng.normal(-0.0015, 0.07, n_big)
        t0 = time.perf_counter()
        copy_columns(
            cur,
            "predictions",
            ["run_id", "cluster_id", "fold", "log10_m500c_pred"],
            [np.ones(n_big), ids, rng.integers(0, 8, n_big), pred],
            "%d\t%d\t%d\t%.6f",
        )
        for run_id, n in ((2, n_small), (3, PAPER_SIZE)):
            sub = rng.choice(ids, n, replace=False)
            copy_columns(
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
    conn = psycopg2.connect(dsn(url))
    conn.autocommit = True
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()
    t_vacuum = time.perf_counter() - t0
    n_preds = n_big + n_small + PAPER_SIZE
    print(
        f"COPY: {n_big:,} clusters in {t_clusters:.1f} s, {n_preds:,} predictions in "
        f"{t_preds:.1f} s (incl. index maintenance); VACUUM ANALYZE {t_vacuum:.1f} s",
        flush=True,
    )
    return {
        "copy_clusters_s": t_clusters,
        "copy_predictions_s": t_preds,
        "vacuum_analyze_s": t_vacuum,
    }


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
            copy_columns(
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


def _summary(ms: list[float]) -> dict[str, float]:
    q = np.percentile(ms, [50, 90, 99])
    return {"p50": float(q[0]), "p90": float(q[1]), "p99": float(q[2]), "min": min(ms)}


def _row(query: str, kind: str, run_size: int | None, ms: list[float]) -> dict:
    return {"query": query, "kind": kind, "run_size": run_size, "ms": ms, "runs": len(ms),
            **_summary(ms)}  # fmt: skip


FUNCTIONS = ("scatter_by_mass", "scatter_by_z", "scatter_by_mass_z")
TUNING = "SET work_mem = '64MB', jit = off"


def measure(
    admin_url: str | None = None,
    n_predictions: int = 1_000_000,
    small_run: int = 100_000,
    repeats: int = 50,
    big_repeats: int = 20,
    seed: int = 2023,
    keep: bool = False,
) -> dict:
    """Load the throwaway database, time every query, drop the database.

    Returns
    -------
    dict
        ``rows``: one dict per timed query (``query``, ``kind`` in {"function", "summary",
        "tuned", "baseline 1", "baseline 2", "baseline 3"}, ``run_size``, ``ms`` and
        ``p50``/``p90``/``p99``/``min`` [ms], ``ratio``: p50 over the p50 of
        ``scatter_by_mass`` on a run of the same size); load, refresh and trigger write-cost
        timings [s]; the server's version and settings; ``EXPLAIN ANALYZE`` plans.
    """
    admin_url = admin_url or default_admin_url()
    n_big, n_small = int(n_predictions), int(small_run)
    if n_big < max(n_small, PAPER_SIZE):
        raise ValueError(
            f"--n-predictions ({n_big:,}) must be at least --small-run ({n_small:,}) and the "
            f"paper's {PAPER_SIZE:,} (every run draws its clusters from the big run's)"
        )
    url = create_database(admin_url)
    rows: list[dict] = []
    try:
        t0 = time.perf_counter()
        migrate.upgrade(url, "head")
        t_migrate = time.perf_counter() - t0
        print(f"database {make_url(url).database}: migrated in {t_migrate:.1f} s", flush=True)
        load_s = load(url, n_big, n_small, seed)
        conn = psycopg2.connect(dsn(url))
        conn.autocommit = True
        cur = conn.cursor()

        def q(sql: str, *params: object) -> Callable[[], object]:
            def run() -> object:
                cur.execute(sql, params)
                return cur.fetchall()

            return run

        sizes = {1: n_big, 2: n_small, 3: PAPER_SIZE}
        reps = {n: big_repeats if n == n_big else repeats for n in sizes.values()}
        # The scatter index of each run (revision 0011), timed alone; refresh_results() would
        # build it too, and then refreshes the materialised summary.
        # Runs below the threshold (50,000 by default) are refused: the plain query serves them.
        index_build_s, indexed = {}, {}
        for run_id, n in sizes.items():
            t0 = time.perf_counter()
            cur.execute("SELECT results_build_index(%s)", (run_id,))
            indexed[str(n)] = bool(cur.fetchone()[0])
            index_build_s[str(n)] = time.perf_counter() - t0
        cur.execute(
            "SELECT (SELECT count(*) FROM results_index_blocks), "
            "(SELECT count(*) FROM results_index_cells)"
        )
        index_rows = dict(zip(("blocks", "cells"), cur.fetchone(), strict=True))
        print(
            "scatter index: "
            + ", ".join(
                f"run of {int(k):,} {v:.1f} s" if indexed[k] else f"run of {int(k):,} not indexed"
                for k, v in index_build_s.items()
            )
            + f" ({index_rows['blocks']:,} blocks, {index_rows['cells']:,} cells)",
            flush=True,
        )
        t0 = time.perf_counter()
        cur.execute("SELECT refresh_results()")
        t_refresh = time.perf_counter() - t0
        print(f"refresh_results(): {t_refresh:.1f} s", flush=True)

        for run_id, n in sizes.items():
            for fn in FUNCTIONS:
                ms = timed(q(f"SELECT * FROM {fn}(%s)", run_id), reps[n])
                rows.append(_row(f"{fn}, run of {n:,}", "function", n, ms))
        rows.append(
            _row(
                "v_scatter_summary, all runs, axis 'mass' (materialised)",
                "summary",
                None,
                timed(
                    q("SELECT * FROM v_scatter_summary WHERE axis = 'mass' ORDER BY subject, bin"),
                    repeats,
                ),
            )
        )
        cur.execute("SET work_mem = '64MB'")
        cur.execute("SET jit = off")
        for fn in ("scatter_by_mass", "scatter_by_mass_z"):
            ms = timed(q(f"SELECT * FROM {fn}(%s)", 1), big_repeats)
            rows.append(_row(f"{fn}, run of {n_big:,}, `{TUNING}`", "tuned", n_big, ms))
        cur.execute("RESET work_mem")
        cur.execute("RESET jit")
        # Baseline 4: the plain query of revision 0010 (no scatter index), still public as
        # scatter_by_*_exact.
        for run_id, n in sizes.items():
            for fn in FUNCTIONS[:2]:
                ms = timed(q(f"SELECT * FROM {fn}_exact(%s)", run_id), reps[n])
                rows.append(
                    _row(f"{fn}_exact, run of {n:,} (plain query, no scatter index)",
                         "baseline 4", n, ms)
                )  # fmt: skip
        # Baseline 1: the same statistics joined with clusters (no trigger-kept copies).
        for run_id, n in sizes.items():
            ms = timed(q(JOIN_BASELINE, run_id), reps[n])
            rows.append(_row(f"mass bins via JOIN clusters, run of {n:,}", "baseline 1", n, ms))

        def client_numpy() -> object:
            cur.execute(
                "SELECT log10_m500c, residual_dex FROM v_residuals "
                "WHERE run_id = %s AND input_domain = 'mock'",
                (1,),
            )
            a = np.array(cur.fetchall(), dtype=float)
            idx = np.searchsorted(MASS_EDGES, a[:, 0], side="right")
            return [
                (np.std(r, ddof=1), np.percentile(r, [16, 50, 84]))
                for r in (a[idx == i, 1] for i in range(1, len(MASS_EDGES)))
            ]

        ms = timed(client_numpy, max(3, big_repeats // 4), warmup=1)
        rows.append(_row(f"client fetch + numpy, run of {n_big:,}", "baseline 2", n_big, ms))
        write_cost = copy_cost(conn, n_small, seed)
        plans = {}
        for run_id, n in sizes.items():
            cur.execute(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM scatter_by_mass_exact(%s)", (run_id,)
            )
            plans[str(n)] = "\n".join(r[0] for r in cur.fetchall())
        cur.execute("DROP INDEX ix_predictions_run_mass")
        cur.execute("DROP INDEX ix_predictions_run_redshift")
        cur.execute("ANALYZE predictions")
        for run_id, n in sizes.items():
            ms = timed(q("SELECT * FROM scatter_by_mass_exact(%s)", run_id), reps[n])
            rows.append(
                _row(f"scatter_by_mass_exact, run of {n:,}, no covering indexes", "baseline 3",
                     n, ms)
            )  # fmt: skip
        conn.close()
        server = server_description(url)
    finally:
        if keep:
            print(f"kept {url}")
        else:
            drop_database(admin_url, url)

    ref = {
        r["run_size"]: r["p50"]
        for r in rows
        if r["kind"] == "function" and r["query"].startswith("scatter_by_mass,")
    }
    for r in rows:
        r["ratio"] = r["p50"] / ref[r["run_size"]] if r["run_size"] in ref else None
    return {
        "params": {
            "n_predictions": n_big,
            "small_run": n_small,
            "paper_run": PAPER_SIZE,
            "repeats": repeats,
            "big_repeats": big_repeats,
            "seed": seed,
        },  # fmt: skip
        "n_clusters": n_big,
        "n_predictions_total": n_big + n_small + PAPER_SIZE,
        "migrate_s": t_migrate,
        **load_s,
        "index_build_s": index_build_s,
        "indexed": indexed,
        "index_rows": index_rows,
        "refresh_results_s": t_refresh,
        "trigger_write_cost_s": write_cost,
        "server": server,
        "python": platform.python_version(),
        "load_avg_end": list(os.getloadavg()),
        "rows": rows,
        "plans": plans,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure, print the table (and optionally save the result)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--admin-url",
        default=default_admin_url(),
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
    ap.add_argument("--plans", action="store_true", help="print the EXPLAIN ANALYZE plans")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    try:
        res = measure(
            args.admin_url, int(args.n_predictions), int(args.small_run), args.repeats,
            args.big_repeats, args.seed, args.keep,
        )  # fmt: skip
    except ValueError as exc:
        ap.error(str(exc))
    print()
    print(f"{os.cpu_count()} CPUs; load average at start {load_start[0]:.1f}, at end "
          f"{res['load_avg_end'][0]:.1f}; server: {res['server'].get('version')}")  # fmt: skip
    print("ratio: p50 / p50 of scatter_by_mass on a run of the same size (same invocation)")
    print("| query | runs | p50 ms | p90 ms | p99 ms | min ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"| {r['kind']}: {r['query']} | {r['runs']} | {r['p50']:.1f} | {r['p90']:.1f} | "
              f"{r['p99']:.1f} | {r['min']:.1f} | {ratio} |")  # fmt: skip
    print(
        f"COPY of {args.small_run:,.0f} predictions of a new run (5 indexes, foreign keys): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in res["trigger_write_cost_s"].items())
    )
    if args.plans:
        for n, plan in res["plans"].items():
            print(f"\nplan of scatter_by_mass_exact on the run of {int(n):,} (covering indexes):")
            print(plan)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
