"""Attribution of a whole cross-validated population: per-cluster products and summary numbers.

:func:`attribute_population` is the entry point of an attribution job. As in the authors'
notebook, every cluster is explained by the model whose *test* fold holds it (the network that
never saw it), with that fold's preprocessing statistics. For each method it returns a
:class:`PopulationAttribution` holding

- per-cluster arrays (maps, radial profiles, core radii, AGN/ICM medians, band fractions):
  :meth:`PopulationAttribution.to_arrays` is the npz product, :meth:`PopulationAttribution.rows`
  the ``attributions`` table rows;
- population numbers with bootstrap intervals (clusters resampled within snapshots):
  :attr:`PopulationAttribution.summary`, and stacked profiles in the arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from models.attribution.errors import AttributionError
from models.attribution.methods import (
    AttributionMethod,
    AttributionSettings,
    attribute_clusters,
    check_method,
)
from models.attribution.results import (
    _SCALAR_KEYS,
    PROFILE_KEYS,
    PopulationAttribution,
    SummaryConfig,
)
from models.attribution.stats import RATIO_GRID, SALIENCY_GRID, PooledHistograms
from models.attribution.summary import GRADIENT_METHODS, summarise_cluster
from models.attribution.summary_stats import population_summary
from models.baselines import MU_PIVOT, fit_proxy_snapshot
from models.data import ClusterArrays
from models.inference import ModelState
from models.networks import MassNetwork
from models.preprocessing import Preprocessing
from models.runtime import resolve_device

__all__ = [
    "SummaryConfig",
    "PopulationAttribution",
    "attribute_population",
    "nphot_slope",
    "PROFILE_KEYS",
]

log = logging.getLogger(__name__)


def nphot_slope(log10_m: np.ndarray, n_phot: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Slope ``alpha`` of ``ln N_phot = pi + alpha ln(M / 2e14)`` per stratum, per cluster.

    The authors fitted the N_phot proxy at each snapshot (their ``scaling[i].loc['Nphot',
    'alpha']``); this is the same OLS (:func:`models.baselines.fit_proxy_snapshot`).

    Parameters
    ----------
    log10_m : ndarray
        True log10(M500c / (h^-1 Msun)).
    n_phot : ndarray
        Total photon counts per cluster (> 0).
    strata : ndarray
        Snapshot (or redshift) of each cluster; one fit per value.
    """
    m, n, s = (np.asarray(a) for a in (log10_m, n_phot, strata))
    out = np.full(m.shape, np.nan)
    for value in np.unique(s):
        sel = (s == value) & (n > 0) & np.isfinite(m)
        fit = fit_proxy_snapshot(m[sel], n[sel], snapshot=0)
        out[s == value] = fit.slope
    if not np.all(out > 0):
        raise AttributionError(
            "the N_phot-mass slope is not positive in every stratum; pass alpha_nphot "
            f"explicitly (pivot {MU_PIVOT:g} h^-1 Msun)"
        )
    return out


def _strata(arrays: ClusterArrays) -> np.ndarray:
    if arrays.snapshot is not None:
        return np.asarray(arrays.snapshot)
    return np.asarray(arrays.redshift)


def _check_inputs(arrays, folds, agn, icm, r500c_pix) -> None:
    n = len(arrays)
    for name, arr in (("agn_counts", agn), ("icm_counts", icm)):
        if np.shape(arr) != arrays.images.shape:
            raise AttributionError(
                f"{name} has shape {np.shape(arr)}, the count maps {arrays.images.shape}: "
                "AGN/ICM maps must match the network's count maps pixel for pixel"
            )
    for name, arr in (("folds", folds), ("r500c_pix", r500c_pix)):
        if np.shape(arr) != (n,):
            raise AttributionError(f"{name} must have shape ({n},); got {np.shape(arr)}")


def attribute_population(
    model_states_by_fold: Mapping[int, ModelState | MassNetwork],
    preprocessing_by_fold: Mapping[int, Preprocessing],
    arrays: ClusterArrays,
    folds: np.ndarray,
    agn_counts: np.ndarray,
    icm_counts: np.ndarray,
    r500c_pix: np.ndarray,
    *,
    methods: Sequence[AttributionMethod] = ("saliency",),
    alpha_nphot: np.ndarray | float | None = None,
    index: np.ndarray | None = None,
    settings: AttributionSettings | None = None,
    config: SummaryConfig | None = None,
    device: str | torch.device = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, PopulationAttribution]:
    """Attribute every cluster with the model of its test fold and summarise.

    Parameters
    ----------
    model_states_by_fold : mapping of int to ModelState or MassNetwork
        Trained model of each fold (the fold it was *tested* on).
    preprocessing_by_fold : mapping of int to Preprocessing
        That model's training-fold statistics.
    arrays : ClusterArrays
        Count maps (AGN+ICM, all bands, as trained on), redshifts, labels (for ``alpha_nphot``
        when not given), snapshots (bootstrap strata), ``kde_cubes`` (multimodal).
    folds : ndarray of int, shape (N,)
        Test fold of every cluster (``CVResult.folds``).
    agn_counts, icm_counts : ndarray, shape like ``arrays.images``
        AGN-only and ICM-only count maps of the same pixels and orientation.
    r500c_pix : ndarray, shape (N,)
        R500c in pixels (:func:`~models.attribution.radial.r500c_pixels`).
    methods : sequence of str
        Any of ``"saliency"``, ``"integrated_gradients"``, ``"smoothgrad"``.
    alpha_nphot : float or ndarray, optional
        Slope of ln N_phot on ln M per cluster; default :func:`nphot_slope` fitted per snapshot.
    index : ndarray of int, optional
        Clusters to attribute (default: every cluster whose fold has a model).
    settings : AttributionSettings, optional
        Method settings.
    config : SummaryConfig, optional
        Summary settings.
    device : str or torch.device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress : callable, optional
        ``progress(done, total)`` in clusters x methods.

    Returns
    -------
    dict of str to PopulationAttribution
        One result per method.
    """
    cfg = config or SummaryConfig()
    s = settings or AttributionSettings()
    for m in methods:
        check_method(m)
    folds = np.asarray(folds)
    r500c_pix = np.asarray(r500c_pix, dtype=np.float64)
    _check_inputs(arrays, folds, agn_counts, icm_counts, r500c_pix)
    missing = sorted(set(model_states_by_fold) ^ set(preprocessing_by_fold))
    if missing:
        raise AttributionError(f"folds {missing} have a model or a preprocessing but not both")
    if index is None:
        idx = np.flatnonzero(np.isin(folds, list(model_states_by_fold)))
        if idx.size < len(arrays):
            log.info("attributing %d of %d clusters (folds with a model)", idx.size, len(arrays))
    else:
        idx = np.asarray(index, dtype=np.int64)
        lacking = sorted(set(np.unique(folds[idx]).tolist()) - set(model_states_by_fold))
        if lacking:
            raise AttributionError(
                f"clusters of folds {lacking} have no model; models exist for folds "
                f"{sorted(model_states_by_fold)}"
            )
    if idx.size == 0:
        raise AttributionError(f"no cluster belongs to folds {sorted(model_states_by_fold)}")
    strata = _strata(arrays)
    n_phot = arrays.images.reshape(len(arrays), -1).sum(axis=1).astype(np.float64)
    if alpha_nphot is None:
        alpha = nphot_slope(arrays.require_labels(), n_phot, strata)
    else:
        alpha = np.broadcast_to(np.asarray(alpha_nphot, dtype=np.float64), (len(arrays),))
    dev = resolve_device(device)
    nets = {
        f: (m.build(dev) if isinstance(m, ModelState) else m.to(dev).eval())
        for f, m in model_states_by_fold.items()
    }
    first = next(iter(nets.values()))
    total = idx.size * len(methods)
    done = 0
    results: dict[str, PopulationAttribution] = {}
    for method in methods:
        collected: dict[str, list] = {}
        for f in sorted(nets):
            fidx = idx[folds[idx] == f]
            pre = preprocessing_by_fold[f]
            for a in range(0, fidx.size, cfg.chunk_size):
                part = fidx[a : a + cfg.chunk_size]
                att = attribute_clusters(
                    nets[f], pre, arrays, part, method=method, settings=s, device=dev
                )
                _collect(collected, att, part, arrays, agn_counts, icm_counts, pre, f,
                         r500c_pix, alpha, strata, method, cfg)  # fmt: skip
                done += part.size
                if progress is not None:
                    progress(done, total)
        results[method] = _assemble(method, first, collected, cfg, arrays)
    return results


def _collect(
    out: dict[str, list],
    att,
    part: np.ndarray,
    arrays: ClusterArrays,
    agn: np.ndarray,
    icm: np.ndarray,
    pre: Preprocessing,
    fold: int,
    r500c_pix: np.ndarray,
    alpha: np.ndarray,
    strata: np.ndarray,
    method: str,
    cfg: SummaryConfig,
) -> None:
    scale = pre.count_scale(arrays.redshift[part])
    for j, i in enumerate(part):
        cs = summarise_cluster(
            att.image[j], arrays.images[i], agn[i], icm[i],
            bands=pre.bands, r500c_pix=float(r500c_pix[i]), alpha_nphot=float(alpha[i]),
            count_scale=float(scale[j]), image_std=pre.image_std, method=method,
            n_bins=cfg.n_bins, r_max=cfg.r_max, threshold=cfg.threshold, masks=cfg.masks,
        )  # fmt: skip
        rec = {
            "cluster_index": int(i),
            "fold": int(fold),
            "strata": strata[i],
            "log10_m_pred": float(att.log10_m[j]),
            "r500c_pix": float(r500c_pix[i]),
            "alpha_nphot": float(alpha[i]),
            "bin_counts": cs.bin_counts,
            "band_fractions": cs.band_fractions,
            **{k: getattr(cs, k) for k in PROFILE_KEYS + _SCALAR_KEYS},
            "hist_agn": cs.agn_hist,
            "hist_icm": cs.icm_hist,
            "hist_band": cs.band_hist,
        }
        if cs.ratio_hist is not None:
            rec["hist_ratio"] = cs.ratio_hist
            rec["hist_ratio_paper"] = cs.ratio_hist_paper
        if cfg.keep_maps:
            rec["maps"] = att.image[j].astype(np.float32)
        if arrays.cluster_id is not None:
            rec["cluster_id"] = arrays.cluster_id[i]
        if att.kde is not None:
            k = np.abs(att.kde[j, 0])
            rec["kde_sky"] = k.sum(axis=-1).astype(np.float32)  # cube axes (x, y, v)
            rec["kde_velocity"] = k.sum(axis=(0, 1)).astype(np.float32)
            if method == "integrated_gradients":
                tot_img = float(np.abs(att.image[j]).sum())
                tot = tot_img + float(k.sum())
                rec["kde_fraction"] = float(k.sum()) / tot if tot > 0 else float("nan")
        if att.delta is not None:
            rec["ig_delta"] = float(att.delta[j])
        for key, value in rec.items():
            out.setdefault(key, []).append(value)


def _assemble(
    method: str,
    network: MassNetwork,
    collected: dict[str, list],
    cfg: SummaryConfig,
    arrays: ClusterArrays,
) -> PopulationAttribution:
    per_cluster = {k: np.asarray(v) for k, v in collected.items() if not k.startswith("hist_")}
    hists = {
        "agn": PooledHistograms(SALIENCY_GRID, np.stack(collected["hist_agn"])),
        "icm": PooledHistograms(SALIENCY_GRID, np.stack(collected["hist_icm"])),
        "band": PooledHistograms(SALIENCY_GRID, np.stack(collected["hist_band"])),
    }
    if method in GRADIENT_METHODS:
        hists["ratio"] = PooledHistograms(RATIO_GRID, np.stack(collected["hist_ratio"]))
        hists["ratio_paper"] = PooledHistograms(RATIO_GRID, np.stack(collected["hist_ratio_paper"]))
    res = PopulationAttribution(
        method=method,
        bands=network.bands,
        needs_kde=network.needs_kde,
        per_cluster=per_cluster,
        histograms=hists,
        config=cfg,
    )
    res.summary, res.stacks = population_summary(res)
    return res
