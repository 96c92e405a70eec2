"""Paired comparisons of the benchmark's networks on the same clusters (docs/benchmark.md).

Two networks' scatters are compared on the same resamples of the same clusters (stratified by
snapshot, BCa intervals, ``models.baselines.bootstrap``), which is much tighter than comparing
their separate intervals, because the residuals of two networks are correlated.

Usage (the run directories written by ``benchmarks/run_full_benchmark.py``)::

    python docs/scripts/benchmark_paired.py --arrays CATALOGUE.npz
        --pair multi=RUN_DIR_MULTI:single=RUN_DIR_SINGLE [--pair ...] [--n-boot 2000]

``CATALOGUE.npz``: the catalogue (``models.data.ClusterArrays.save_npz``; its snapshots are the
strata). Prints a Markdown table: difference A - B of sigma_lnM in points of percent with its 68%
and 95% intervals, and the correlation of the two residuals.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.baselines import bootstrap, dl_scatter  # noqa: E402
from models.data import ClusterArrays  # noqa: E402


def predictions(run_dir: Path, ids: np.ndarray) -> np.ndarray:
    """Out-of-fold log10 M500c of ``run_dir/predictions.csv``, in the order of ``ids``."""
    with (run_dir / "predictions.csv").open() as fh:
        got = {r["cluster_id"]: float(r["log10_m500c_pred"]) for r in csv.DictReader(fh)}
    return np.array([got[str(i)] for i in ids])


def paired(
    a: np.ndarray, b: np.ndarray, true: np.ndarray, snapshot: np.ndarray, n_boot: int
) -> dict[str, float]:
    """sigma_lnM(a) - sigma_lnM(b) with 68% and 95% intervals, and the residual correlation."""

    def diff(i: np.ndarray) -> float:
        return dl_scatter(a[i], true[i]) - dl_scatter(b[i], true[i])

    e68 = bootstrap(diff, snapshot, n_boot=n_boot, level=0.68, seed=0)
    e95 = bootstrap(diff, snapshot, n_boot=n_boot, level=0.95, seed=0)
    corr = float(np.corrcoef(a - true, b - true)[0, 1])
    return {"diff": e68.value, "lo68": e68.low, "hi68": e68.high, "lo95": e95.low,
            "hi95": e95.high, "corr": corr}  # fmt: skip


def main() -> None:
    """Print the table of the pairs given on the command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arrays", type=Path, required=True)
    ap.add_argument("--pair", action="append", required=True, help="NAME=DIR:NAME=DIR")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    arrays = ClusterArrays.load_npz(args.arrays)
    true = arrays.require_labels()
    snap = arrays.snapshot if arrays.snapshot is not None else np.zeros(len(arrays), int)
    print("| A - B | sigma_lnM difference [points] | 68% | 95% | residual correlation |")
    print("|---|---:|---:|---:|---:|")
    for spec in args.pair:
        (na, da), (nb, db) = (s.split("=", 1) for s in spec.split(":", 1))
        r = paired(
            predictions(Path(da), arrays.cluster_id),
            predictions(Path(db), arrays.cluster_id),
            true, snap, args.n_boot,
        )  # fmt: skip
        print(
            f"| {na} - {nb} | {100 * r['diff']:+.2f} | [{100 * r['lo68']:+.2f}, "
            f"{100 * r['hi68']:+.2f}] | [{100 * r['lo95']:+.2f}, {100 * r['hi95']:+.2f}] | "
            f"{r['corr']:.2f} |"
        )


if __name__ == "__main__":
    main()
