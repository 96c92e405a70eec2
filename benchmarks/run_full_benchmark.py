"""The full benchmark on a mock catalogue: the material of ``docs/benchmark.md``.

Trains the three CNNs with 8 spatial folds (paper configs from ``configs/``; ``--cpu`` swaps
in ``configs/multimodal_cpu.yaml``), fits every scalar proxy and combination, the oracle floor,
optionally a Gaussian-head deep ensemble for calibration, and writes into ``--out``:
``benchmark.{csv,md,json,png}``, one run directory per network, and ``report.md`` (the table
side by side with the paper, the shape checks, calibration, timings, run keys, settings).

Usage::

    python benchmarks/run_full_benchmark.py --data MOCK_DIR --out OUT [--device auto] [--cpu]
        [--models single,multi,multimodal,single_ensemble] [--ensemble 3] [--max-epochs N]
        [--uncertainty] [--n-boot 1000] [--preset paper --results-csv docs/benchmark_results.csv]
        [--resume]

``<kind>_ensemble`` in ``--models`` adds a fold ensemble of that network (``--ensemble`` seeds
per fold, their mean) as its own row. ``--results-csv`` merges this run's rows, under
``--preset``, into the machine-readable results file: the rows of the estimators this run
computed are replaced, every other row is kept (``--replace-preset``: drop the preset's rows
first).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astro.allocator import reexec_with_tuned_malloc  # noqa: E402
from models.comparison import shape_checks, table_markdown  # noqa: E402
from models.config import RunConfig  # noqa: E402
from models.pipeline import run_benchmark, run_training, split_estimator  # noqa: E402
from models.results_table import merge_results_csv, results_rows  # noqa: E402
from services.jobs.data import mock_directory_arrays  # noqa: E402

CONFIGS = {"single": "single.yaml", "multi": "multi.yaml", "multimodal": "multimodal.yaml"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cpu", action="store_true", help="use configs/multimodal_cpu.yaml")
    ap.add_argument("--models", default="single,multi,multimodal")
    ap.add_argument("--max-epochs", type=int, default=None, help="cap every network's epochs")
    ap.add_argument("--uncertainty", action="store_true", help="also run single_gaussian.yaml")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--ensemble", type=int, default=3, help="members per fold of *_ensemble")
    ap.add_argument("--preset", default=None, help="preset name of the rows in --results-csv")
    ap.add_argument("--results-csv", type=Path, default=None, help="merge rows into this CSV")
    ap.add_argument("--resume", action="store_true", help="read back finished folds in --out")
    ap.add_argument(
        "--replace-preset", action="store_true",
        help="with --results-csv: drop every row of --preset first (default: replace only the "
        "estimators of this run)",
    )  # fmt: skip
    args = ap.parse_args()
    if args.results_csv is not None and not args.preset:
        ap.error("--results-csv needs --preset (the mock preset these rows belong to)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    over: dict = {"training": {"device": args.device}}
    if args.max_epochs:
        over["training"]["max_epochs"] = args.max_epochs
    kinds = [k for k in args.models.split(",") if k]
    configs = {}
    for k in kinds:
        kind, ensemble = split_estimator(k)
        name = "multimodal_cpu.yaml" if (kind == "multimodal" and args.cpu) else CONFIGS[kind]
        extra = {"ensemble": args.ensemble} if ensemble else {}
        configs[k] = RunConfig.from_config(ROOT / "configs" / name, **over, **extra)
    arrays = mock_directory_arrays(args.data)
    t0 = time.perf_counter()
    res = run_benchmark(
        arrays, args.out, configs=configs, models=kinds, n_boot=args.n_boot, resume=args.resume
    )
    seconds = time.perf_counter() - t0
    checks = shape_checks(res.rows)
    lines = [
        f"# Benchmark on {args.data}",
        "",
        f"{len(arrays)} clusters; {platform.node()}; device {args.device}; "
        f"{seconds / 3600:.2f} h for training and baselines.",
        "",
        table_markdown(res.rows),
        "## Shape of the paper's result",
        "",
        *[
            f"- {'yes' if c['holds'] else ('n/a' if c['holds'] is None else 'NO')}: "
            f"{c['claim']} ({c['detail']})"
            for c in checks
        ],  # fmt: skip
        "",
        "## Runs",
        "",
        *[f"- {k}: `{v}` (config key {configs[k].key()[:12]})" for k, v in res.run_dirs.items()],
    ]
    if args.uncertainty:
        cfg = RunConfig.from_config(ROOT / "configs" / "single_gaussian.yaml", **over)
        run_dir, _, metrics = run_training(
            arrays, cfg, args.out, n_boot=args.n_boot, resume=args.resume
        )
        cal = metrics.get("calibration", {})
        lines += [
            "",
            "## Per-cluster uncertainty (Gaussian head, deep ensemble)",
            "",
            f"`{run_dir}`: sigma_lnM {100 * metrics['sigma_lnM']:.2f}%, coverage of the 68% "
            f"interval {cal.get('coverage_68', float('nan')):.3f}, of the 95% interval "
            f"{cal.get('coverage_95', float('nan')):.3f}, median sigma "
            f"{cal.get('median_sigma_dex', float('nan')):.4f} dex.",
        ]
    if args.results_csv is not None:
        merge_results_csv(
            args.results_csv, args.preset, results_rows(args.preset, res.rows),
            mode="preset" if args.replace_preset else "estimators",
        )  # fmt: skip
        lines += ["", f"Rows merged into `{args.results_csv}` as preset `{args.preset}`."]
    report = args.out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    (args.out / "shape_checks.json").write_text(json.dumps(checks, indent=2))
    print(report.read_text())


if __name__ == "__main__":
    reexec_with_tuned_malloc()  # the clustermass CLI's allocator (astro.allocator)
    main()
