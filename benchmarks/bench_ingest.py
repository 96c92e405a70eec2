"""Ingestion of a mock catalogue through the project's path versus a raw ``COPY`` of its rows.

A mock catalogue of ``--n`` clusters is generated and written (``mocks.generate``,
``MockCatalogue.write``), a throwaway database is created on the server of ``--admin-url`` and
migrated to head, and then, into the same empty tables:

1. ``services.jobs.simulation.ingest_mock_directory`` (what ``clustermass ingest-simulation`` and
   the Celery task run): read the truth table; copy every FITS file into the content-addressed
   store (copied, then hashed), in threads, while one transaction stages the catalogue's
   clusters and observables with ``COPY`` into temporary tables and merges them (one
   ``INSERT ... SELECT`` per table: plain for rows of clusters it just inserted, ``ON CONFLICT
   DO UPDATE`` otherwise); the products, which need the checksums, last.
2. The same call into a second, empty database whose store already owns every map file (the
   manifest's checksums let the store skip them): reading plus database writes, no hashing.
3. The same call again into the first database: the idempotent re-run, every row existing
   (``ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM``: nothing is rewritten).
4. The file costs alone (no database): the maps stored into an empty store by the ingest's own
   function, and the same bytes written as new files by a plain loop (the filesystem's floor).
5. Baseline, the lower bound: the rows the project wrote are exported (``COPY ... TO STDOUT``),
   the tables truncated, and the same rows loaded back with ``COPY ... FROM STDIN`` (psycopg2
   ``copy_expert``) in one transaction: same tables, same indexes, constraints and triggers, no
   conflict handling, no client-side row building.

Rows are clusters + observables + products (plus one catalogue row, not counted); ratios are
rows/s over the rows/s of the raw COPY of the same invocation. The database is dropped at the end.

Usage::

    python benchmarks/bench_ingest.py [--n 3300] [--seed 1] [--admin-url URL] [--json out.json]
    python -m benchmarks --only ingest     # the same, into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages first

import psycopg2  # noqa: E402

from benchmarks._db import (  # noqa: E402
    create_database,
    default_admin_url,
    drop_database,
    dsn,
    server_description,
)
from db import migrate  # noqa: E402
from mocks import MockConfig, generate  # noqa: E402
from services.database import get_engine  # noqa: E402
from services.jobs.simulation import ingest_mock_directory, store_mock_maps  # noqa: E402
from services.settings import Settings  # noqa: E402

TABLES = ("catalogues", "clusters", "observables", "products")


def _columns(cur, table: str) -> list[str]:  # noqa: ANN001
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table,),
    )
    return [r[0] for r in cur.fetchall()]


def _counts(cur) -> dict[str, int]:  # noqa: ANN001
    out = {}
    for table in TABLES:
        cur.execute(f"SELECT count(*) FROM {table}")
        out[table] = cur.fetchone()[0]
    return out


def _timed_ingest(mock_dir: Path, settings: object) -> dict[str, float]:
    """Run ``ingest_mock_directory`` once; total seconds, and when the last map was stored.

    The maps are stored in a thread while the database is written, so ``store_s`` (until the
    last map was stored) and ``db_s`` (the rest) overlap: ``db_s`` is only the tail that did not.
    """

    stamps: list[float] = []
    t0 = time.perf_counter()
    summary = ingest_mock_directory(
        mock_dir,
        settings=settings,
        progress=lambda _done, _total: stamps.append(time.perf_counter()),
    )
    t_end = time.perf_counter()
    store_end = stamps[-1] if stamps else t0
    return {
        "total_s": t_end - t0,
        "store_s": store_end - t0,
        "db_s": t_end - store_end,
        "summary": summary.as_dict(),
    }


def _ingest_with_stored_maps(admin_url: str, mock_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Time ``ingest_mock_directory`` into a second empty database, the maps already stored."""
    url = create_database(admin_url, prefix="cmbench2")
    settings = Settings(database_url=url, data_dir=data_dir)
    try:
        migrate.upgrade(url, "head")
        return _timed_ingest(mock_dir, settings)
    finally:
        get_engine(settings).dispose()
        drop_database(admin_url, url)


def raw_copy(url: str) -> dict[str, object]:
    """Export the four tables, truncate them and time the ``COPY FROM STDIN`` of the same rows."""
    conn = psycopg2.connect(dsn(url))
    try:
        with conn.cursor() as cur:
            dumps: dict[str, tuple[list[str], str]] = {}
            for table in TABLES:
                cols = _columns(cur, table)
                buf = io.StringIO()
                cur.copy_expert(f"COPY (SELECT {', '.join(cols)} FROM {table}) TO STDOUT", buf)
                dumps[table] = (cols, buf.getvalue())
            before = _counts(cur)
            cur.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
        conn.commit()
        with conn.cursor() as cur:
            t0 = time.perf_counter()
            for table, (cols, text) in dumps.items():
                cur.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN", io.StringIO(text))
            conn.commit()
            seconds = time.perf_counter() - t0
            after = _counts(cur)
    finally:
        conn.close()
    if after != before:
        raise RuntimeError(f"raw COPY wrote {after}, the project's ingest {before}")
    return {"seconds": seconds, "counts": after, "bytes": sum(len(t) for _, t in dumps.values())}


def file_costs(mock_dir: Path, scratch: Path) -> dict[str, float]:
    """What the map files cost without the database, on the store's filesystem.

    ``store_s``: every map stored into an empty store by the ingest's own function (its threads,
    copy + sha256); ``write_s``: the same bytes written as new files by one plain loop (read
    first, untimed; no hashing), the filesystem's floor for putting them in the store;
    ``bytes``: their total size.
    """
    maps = sorted((mock_dir / "maps").glob("*.fits"))
    manifest = json.loads((mock_dir / "manifest.json").read_text())
    ids = [p.stem for p in maps]
    stop = threading.Event()
    store = scratch / "store-alone"
    t0 = time.perf_counter()
    store_mock_maps(store, mock_dir, ids, manifest, None, stop)
    store_s = time.perf_counter() - t0
    shutil.rmtree(store)
    payloads = [p.read_bytes() for p in maps]
    out = scratch / "write-floor"
    out.mkdir()
    t0 = time.perf_counter()
    for k, payload in enumerate(payloads):
        with open(out / f"{k}.fits", "wb") as fh:
            fh.write(payload)
    write_s = time.perf_counter() - t0
    shutil.rmtree(out)
    return {"store_s": store_s, "write_s": write_s, "bytes": float(sum(map(len, payloads)))}


def measure(
    n: int = 3300, seed: int = 1, admin_url: str | None = None, keep: bool = False
) -> dict[str, object]:
    """Generate, write and ingest a mock of ``n`` clusters; time the raw COPY of the same rows.

    Returns
    -------
    dict
        ``rows`` (per table and ``total``: clusters + observables + products), ``cases`` (one
        dict per timed path: ``name``, ``seconds``, ``rows_per_s``, ``ratio`` against the raw
        COPY), the mock's generation and writing times [s] and the server description.
    """

    admin_url = admin_url or default_admin_url()
    load_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="cmbench-ingest-") as tmp:
        mock_dir = Path(tmp) / "mock"
        t0 = time.perf_counter()
        cat = generate(MockConfig(n_clusters=n, seed=seed))
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        cat.write(mock_dir)
        t_write = time.perf_counter() - t0
        n_truth_columns = len(cat.truth.colnames)
        del cat
        print(
            f"mock of {n:,} clusters: generated {t_gen:.1f} s, written {t_write:.1f} s", flush=True
        )

        url = create_database(admin_url)
        settings = Settings(database_url=url, data_dir=Path(tmp) / "store")
        try:
            t0 = time.perf_counter()
            migrate.upgrade(url, "head")
            t_migrate = time.perf_counter() - t0
            first = _timed_ingest(mock_dir, settings)
            print(f"ingest_mock_directory: {first['total_s']:.1f} s", flush=True)
            second = _timed_ingest(mock_dir, settings)
            print(f"ingest_mock_directory again: {second['total_s']:.1f} s", flush=True)
            get_engine(settings).dispose()
            stored = _ingest_with_stored_maps(admin_url, mock_dir, settings.data_dir)
            print(f"ingest_mock_directory, maps already stored: {stored['total_s']:.1f} s")
            copy = raw_copy(url)
            print(f"raw COPY of the same rows: {copy['seconds']:.2f} s", flush=True)
            files = file_costs(mock_dir, Path(tmp))
            print(
                f"file store alone: {files['store_s']:.2f} s; writing the same bytes as new "
                f"files: {files['write_s']:.2f} s ({files['bytes'] / 2**30:.2f} GiB)",
                flush=True,
            )
            server = server_description(url)
        finally:
            get_engine(settings).dispose()
            if keep:
                print(f"kept {url}")
            else:
                drop_database(admin_url, url)

    counts = copy["counts"]
    rows = counts["clusters"] + counts["observables"] + counts["products"]
    base = rows / copy["seconds"]

    def case(name: str, seconds: float, kind: str) -> dict[str, object]:
        rate = rows / seconds
        return {"name": name, "kind": kind, "seconds": seconds, "rows_per_s": rate,
                "ratio": rate / base}  # fmt: skip

    cases = [
        case("raw COPY of the same rows (lower bound)", copy["seconds"], "baseline"),
        case(
            "ingest_mock_directory, first ingest (maps stored while the database is written)",
            first["total_s"],
            "total",
        ),
        case(
            "ingest_mock_directory, first ingest, the store already owns the maps",
            stored["total_s"],
            "db",
        ),
        case(
            "ingest_mock_directory, re-run (every row exists, nothing changes)",
            second["total_s"],
            "rerun",
        ),
    ]
    return {
        "params": {"n": n, "seed": seed},
        "n_clusters": n,
        "truth_columns": n_truth_columns,
        "rows": {**counts, "total": rows},
        "copy_bytes": copy["bytes"],
        "generate_s": t_gen,
        "write_s": t_write,
        "migrate_s": t_migrate,
        "store_s": {"first": first["store_s"], "rerun": second["store_s"]},
        "files": files,
        "load_avg_start": load_start,
        "cases": cases,
        "server": server,
        "load_avg_end": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure, print (and optionally save) the numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3300, help="clusters in the mock catalogue")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--admin-url",
        default=default_admin_url(),
        help="URL of a database on a server where this user may CREATE DATABASE",
    )
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    res = measure(args.n, args.seed, args.admin_url, args.keep)
    print(f"rows: {res['rows']}")
    print("| path | s | rows/s | ratio vs COPY |")
    print("|---|---:|---:|---:|")
    for c in res["cases"]:
        print(f"| {c['name']} | {c['seconds']:.2f} | {c['rows_per_s']:,.0f} | {c['ratio']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
