"""Attribution jobs: what the networks look at (Ho et al. 2023, Sect. 5), stored per cluster.

Every cluster is explained by the fold model that did not train on it (as the authors). Per
method the per-cluster maps and profiles go into ONE npz product (kind ``saliency``, no cluster,
labelled ``run:<id>:<method>``), each ``attributions`` row points at it with its index in
``summary["product_index"]``; the population summary (bootstrap intervals) lands in
``model_runs.metrics["attribution"][method]`` and the figures in the report folder.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from db import products, runs, stores
from db.errors import RunNotFoundError
from db.session import session_scope
from models import RunConfig
from models.attribution import SummaryConfig, attribute_population, r500c_pixels
from models.attribution.errors import AttributionError
from models.attribution.figures import write_figures
from models.attribution.population import nphot_slope
from models.crossval import ensure_kde
from models.errors import ProxyError
from models.folds import make_folds
from services.database import ready_engine
from services.jobs.data import load_catalogue_data
from services.jobs.params import AttributeParams
from services.jobs.predict import run_models
from services.settings import Settings, get_settings

__all__ = ["attribute_job", "report_dir"]

log = logging.getLogger(__name__)


def report_dir(settings: Settings, run_id: int) -> Path:
    """Folder of a run's report files (figures, tables) under the data directory."""
    path = Path(settings.data_dir) / "reports" / f"run-{run_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    return value


UNDEFINED_SLOPE = "undefined: N_phot does not rise with mass"


def _nphot_slopes(arrays: Any) -> tuple[np.ndarray, str]:
    """Slope of ln N_phot on ln M for the proxy weight: per snapshot (as the authors), else pooled.

    With few clusters per snapshot, or maps dominated by background, a snapshot's fit can come
    out non-positive; the slope fitted over all clusters at once is then used and recorded.
    """
    labels = arrays.require_labels()
    n_phot = arrays.images.reshape(len(arrays), -1).sum(axis=1).astype(np.float64)
    strata = arrays.snapshot if arrays.snapshot is not None else np.zeros(len(arrays), int)
    try:
        return nphot_slope(labels, n_phot, strata), "per-snapshot"
    except (AttributionError, ProxyError) as exc:
        log.warning("%s: using one N_phot slope fitted over all snapshots", exc)
    try:
        return nphot_slope(labels, n_phot, np.zeros(len(arrays), int)), "pooled"
    except (AttributionError, ProxyError) as exc:
        # N_phot does not rise with mass (background-dominated maps, tiny samples): the proxy
        # weight, and with it the core radius, is undefined; the saliency itself is not.
        log.warning("%s: no proxy weight, core radii left undefined", exc)
    return np.full(len(arrays), np.nan), UNDEFINED_SLOPE


def _drop_core_radii(res: Any) -> None:
    """Blank every core-radius number (they need the N_phot proxy weight)."""
    for key in list(res.per_cluster):
        if "r_core" in key:
            res.per_cluster[key] = np.full(len(res), np.nan)
    for key in list(res.summary):
        if "r_core" in key:
            res.summary[key] = None


def attribute_job(
    params: AttributeParams,
    *,
    keep_maps: bool = True,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Attribute the clusters of a run's training catalogue (all, or a seeded random subset).

    Returns
    -------
    dict
        Per method: the population summary and the figure paths.
    """
    run_id, seed, max_clusters = params.run_id, params.seed, params.max_clusters
    settings = settings or get_settings()
    engine = ready_engine(settings)
    run, models = run_models(run_id, settings)
    if run.catalogue_id is None:
        raise RunNotFoundError(f"run {run_id} has no training catalogue")
    cfg = RunConfig.model_validate(run.config)
    data = load_catalogue_data(engine, run.catalogue_id, settings.data_dir)
    arrays = data.arrays
    folds = make_folds(arrays, cfg.cv.scheme, data.box_size_mpc_h or cfg.cv.box_size)
    candidates = np.flatnonzero(np.isin(folds, list(models)))
    if max_clusters is not None and candidates.size > max_clusters:
        rng = np.random.default_rng(seed)
        candidates = np.sort(rng.choice(candidates, size=max_clusters, replace=False))
    if cfg.build_network().needs_kde:
        arrays = ensure_kde(replace(arrays, kde_cubes=None), cfg.data.kde)
    r500c_pix = r500c_pixels(data.r500c_mpc_h, arrays.redshift, n_pixels=arrays.images.shape[-1])
    alpha, alpha_fit = _nphot_slopes(arrays)
    results = attribute_population(
        {f: states[0] for f, (states, _) in models.items()},
        {f: pre for f, (_, pre) in models.items()},
        arrays,
        folds,
        data.counts_agn,
        data.counts_icm,
        r500c_pix,
        methods=params.methods,
        index=candidates,
        # an undefined slope: a placeholder keeps the maps; every core radius is dropped below
        alpha_nphot=np.where(np.isfinite(alpha), alpha, 1.0),
        config=SummaryConfig(n_boot=params.n_boot, keep_maps=keep_maps),
        device=settings.device,
        progress=progress,
    )
    out: dict[str, Any] = {}
    folder = report_dir(settings, run_id) / "attribution"
    for method, res in results.items():
        if alpha_fit == UNDEFINED_SLOPE:
            _drop_core_radii(res)
        npz = res.to_arrays()
        stored = products.store_arrays(settings.data_dir, npz)
        figures = write_figures(
            npz, res.summary, arrays.images[res.per_cluster["cluster_index"]], folder / method
        )
        with session_scope(engine) as session:
            stores.record_store(session, settings.data_dir)
            pid = products.upsert_product(
                session,
                stored=stored,
                kind="saliency",
                shape=[len(res)],
                dtype="npz",
                label=f"run:{run_id}:{method}",
                meta={"run_id": run_id, "method": method, "keys": sorted(npz)},
            )
            rows = []
            for k, row in enumerate(res.rows()):
                cluster_index = int(row["cluster_index"])
                bands = row.get("band_fractions")
                rows.append(
                    {
                        "run_id": run_id,
                        "cluster_id": int(data.cluster_ids[cluster_index]),
                        "method": method,
                        "product_id": pid,
                        "r_core_over_r500c": _json_safe(row.get("r_core_over_r500c")),
                        "median_saliency_agn": _json_safe(row.get("median_saliency_agn")),
                        "median_saliency_icm": _json_safe(row.get("median_saliency_icm")),
                        "band_fractions": None if bands is None else _json_safe(list(bands)),
                        "summary": _json_safe({**(row.get("summary") or {}), "product_index": k}),
                    }
                )
            runs.upsert_attributions(session, rows)
            runs.merge_run_metrics(
                session,
                run_id,
                ("attribution", method),
                _json_safe({**res.summary, "alpha_nphot_fit": alpha_fit}),
            )
        out[method] = {
            "n_clusters": len(res),
            "summary": _json_safe(res.summary),
            "figures": {k: str(v) for k, v in figures.items()},
        }
    return out
