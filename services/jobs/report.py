"""Report job: the paper-style benchmark table and the scatter-by-bin tables of a catalogue.

Reads everything from the database: truth and observables (the scalar-proxy baselines), the
out-of-fold predictions of the catalogue's finished runs (the newest run per network kind unless
runs are named), and the hidden-truth regression (the "oracle": a regression on chosen hidden
truth, not a floor). Stores the bootstrap intervals of the scatter per bin and the proxy mass estimates, refreshes the results summary, and writes CSV,
Markdown and PNG files into ``<data_dir>/reports/catalogue-<id>/``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from db import bootstrap, catalogues, proxy_masses, results
from db import runs as db_runs
from db.errors import ProxyFitError
from db.session import session_scope
from models.comparison import (
    DEFAULT_PROXIES,
    benchmark_figure,
    benchmark_table,
    estimator_label,
    estimator_of,
    table_markdown,
    write_table_csv,
)
from models.folds import make_folds
from models.oracle import oracle_label, oracle_predictions
from services.database import ready_engine
from services.jobs.data import load_catalogue_data
from services.settings import Settings, get_settings

__all__ = ["report_job"]

log = logging.getLogger(__name__)


def _proxy_columns(arrays: Any) -> list[str]:
    """Return the benchmark's single-proxy columns this catalogue has (T, L_X, M_gas, ...)."""
    names = [p.columns[0] for p in DEFAULT_PROXIES if len(p.columns) == 1]
    return [n for n in names if n in arrays.scalars]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def report_job(
    catalogue_id: int,
    *,
    run_ids: Sequence[int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    settings: Settings | None = None,
    predicted_only: bool = False,
) -> dict[str, Any]:
    """Build the benchmark and scatter-by-bin tables; return them with the file paths.

    ``predicted_only``: compute every row of the benchmark table (proxies, oracle, networks)
    on the clusters that every selected run predicted, so a run trained on some of the folds
    is compared on the same clusters as the proxies (``clustermass demo``). The SQL
    scatter-by-bin tables are per run and not affected.
    """
    settings = settings or get_settings()
    engine = ready_engine(settings)
    data = load_catalogue_data(engine, catalogue_id, settings.data_dir)
    arrays = data.arrays
    pos = {int(c): i for i, c in enumerate(data.cluster_ids)}
    predictions: dict[str, np.ndarray] = {}
    run_info = []
    with session_scope(engine) as session:
        cat = catalogues.get_catalogue(session, catalogue_id)
        # Newest run per estimator: a fold ensemble or the Gaussian-head variant of a network
        # is its own row, not the newest run of that network.
        for run in db_runs.catalogue_runs(
            session, catalogue_id, run_ids, key=lambda r: estimator_of(r.kind, r.config or {})
        ):
            pred = np.full(len(arrays), np.nan)
            for cid, value in db_runs.run_predictions(session, run.id).items():
                if cid in pos:
                    pred[pos[cid]] = value
            label = estimator_label(estimator_of(run.kind, run.config or {}))
            if label in predictions:
                label = f"{label} (run {run.id})"
            predictions[label] = pred
            run_info.append({"run_id": run.id, "kind": run.kind, "label": label, "name": run.name})
        catalogue_name = cat.name
    n_catalogue = len(arrays)
    if predicted_only and predictions:
        keep = np.flatnonzero(np.all([np.isfinite(p) for p in predictions.values()], axis=0))
        arrays = arrays.subset(keep)
        predictions = {k: v[keep] for k, v in predictions.items()}
        log.info("report: %d of %d clusters predicted by every run", len(keep), n_catalogue)
    box = data.box_size_mpc_h or 352.0
    oracle = None
    try:
        oracle = oracle_predictions(arrays, make_folds(arrays, "octants", box))
    except Exception as exc:  # noqa: BLE001 - the oracle row is optional
        log.warning("no oracle row: %s", exc)
    label = oracle_label(arrays)
    rows = benchmark_table(
        arrays, predictions, oracle=oracle, oracle_label=label, n_boot=n_boot, seed=seed
    )
    rows = [{k: _clean(v) for k, v in r.items()} for r in rows]

    out = Path(settings.data_dir) / "reports" / f"catalogue-{catalogue_id}"
    out.mkdir(parents=True, exist_ok=True)
    write_table_csv(rows, out / "benchmark.csv")
    (out / "benchmark.md").write_text(table_markdown(rows))
    figure_preds = {**predictions}
    if oracle is not None:
        figure_preds[label] = oracle
    figure = benchmark_figure(
        arrays.require_labels(), figure_preds, arrays.redshift, out / "benchmark.png"
    )

    binned: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with session_scope(engine) as session:
        skipped = {}
        for proxy in _proxy_columns(arrays):
            try:
                with session.begin_nested():
                    proxy_masses.fit_proxy_estimates(
                        session, catalogue_id=catalogue_id, proxies=[proxy]
                    )
            except ProxyFitError as exc:  # too few clusters per snapshot: no SQL proxy rows
                skipped[proxy] = str(exc)
                log.warning("proxy %s: %s", proxy, exc)
        for info in run_info:
            rid = info["run_id"]
            binned[str(rid)] = {}
            for axis in ("mass", "z"):
                bootstrap.store_bootstrap(
                    session, run_id=rid, axis=axis, n_resamples=n_boot, seed=seed
                )
                binned[str(rid)][axis] = [
                    {k: _clean(v) for k, v in asdict(b).items()}
                    for b in results.scatter(session, run_id=rid, by=axis)
                ]
        results.refresh(session)
    (out / "scatter_by_bin.json").write_text(json.dumps(binned, indent=2))
    return {
        "catalogue_id": catalogue_id,
        "catalogue": catalogue_name,
        "runs": run_info,
        "benchmark": rows,
        "n_catalogue": n_catalogue,
        "n_benchmark": len(arrays),
        "scatter_by_bin": binned,
        "proxies_not_fitted": skipped,
        "files": {
            "csv": str(out / "benchmark.csv"),
            "markdown": str(out / "benchmark.md"),
            "figure": str(figure),
            "scatter_by_bin": str(out / "scatter_by_bin.json"),
        },
    }
