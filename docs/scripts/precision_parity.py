"""Paired accuracy comparison of two runs on the same catalogue, folds and seeds (e.g. fp32 vs bf16).

Run from the repository root against the database that holds both runs::

    CLUSTERMASS_DATABASE_URL=postgresql://... python docs/scripts/precision_parity.py RUN_A RUN_B

Both runs must be out-of-fold runs of one training catalogue with the same fold split (the
script checks both). For each run it prints ``sigma_lnM`` (percent) and bias (dex) over every
cluster and per fold, then the paired differences B - A with a 68% bootstrap interval over
clusters (the same resample indices for both runs, 2,000 resamples, seed 0). Residuals come
from the results view ``v_residuals`` restricted to the run's own training catalogue.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.metrics import residual_summary  # noqa: E402
from services.database import database_url  # noqa: E402

QUERY = sa.text(
    """
    SELECT v.cluster_id, v.fold, v.log10_m500c_pred, v.log10_m500c
    FROM v_residuals v JOIN model_runs r ON r.id = v.run_id
    WHERE v.run_id = :run AND v.catalogue_id = r.catalogue_id AND v.fold IS NOT NULL
    ORDER BY v.cluster_id
    """
)


def load(conn: sa.Connection, run: int) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of ``run`` on its training catalogue, sorted by cluster id."""
    rows = conn.execute(QUERY, {"run": run}).all()
    if not rows:
        raise SystemExit(f"run {run}: no out-of-fold predictions on its training catalogue")
    a = np.array(rows, dtype=np.float64)
    return {
        "id": a[:, 0].astype(int),
        "fold": a[:, 1].astype(int),
        "pred": a[:, 2],
        "true": a[:, 3],
    }


def summary(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """``sigma_lnM`` in percent and the bias in dex of predictions against the truth."""
    s = residual_summary(pred, true)
    return 100 * s["sigma_lnM"], s["bias_dex"]


def main(argv: list[str]) -> int:
    """Print the per-fold and total comparison of runs ``argv[0]`` (A) and ``argv[1]`` (B)."""
    if len(argv) != 2:
        print(__doc__)
        return 2
    ra, rb = int(argv[0]), int(argv[1])
    with sa.create_engine(database_url()).connect() as conn:
        a, b = load(conn, ra), load(conn, rb)
    if not (np.array_equal(a["id"], b["id"]) and np.array_equal(a["fold"], b["fold"])):
        raise SystemExit("the two runs do not cover the same clusters with the same folds")
    print(f"{len(a['id'])} clusters, {len(set(a['fold']))} folds; run A = {ra}, run B = {rb}")
    print(f"{'fold':>5} {'n':>5} {'sigma A %':>10} {'sigma B %':>10} {'bias A':>9} {'bias B':>9}")
    for f in sorted(set(a["fold"])):
        m = a["fold"] == f
        sa_, ba = summary(a["pred"][m], a["true"][m])
        sb, bb = summary(b["pred"][m], b["true"][m])
        print(f"{f:>5} {m.sum():>5} {sa_:>10.2f} {sb:>10.2f} {ba:>+9.4f} {bb:>+9.4f}")
    sa_, ba = summary(a["pred"], a["true"])
    sb, bb = summary(b["pred"], b["true"])
    print(f"{'all':>5} {len(a['id']):>5} {sa_:>10.2f} {sb:>10.2f} {ba:>+9.4f} {bb:>+9.4f}")
    rng = np.random.default_rng(0)
    n = len(a["id"])
    ds, db_ = [], []
    for _ in range(2000):
        i = rng.integers(0, n, n)
        s1, b1 = summary(a["pred"][i], a["true"][i])
        s2, b2 = summary(b["pred"][i], b["true"][i])
        ds.append(s2 - s1)
        db_.append(b2 - b1)
    lo_s, hi_s = np.percentile(ds, [16, 84])
    lo_b, hi_b = np.percentile(db_, [16, 84])
    print(f"B - A: sigma_lnM {sb - sa_:+.2f} points, 68% [{lo_s:+.2f}, {hi_s:+.2f}]; "
          f"bias {bb - ba:+.4f} dex, 68% [{lo_b:+.4f}, {hi_b:+.4f}]")  # fmt: skip
    r = np.corrcoef(a["pred"] - a["true"], b["pred"] - b["true"])[0, 1]
    print(f"correlation of the two runs' residuals: {r:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
