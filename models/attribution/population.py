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
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from models.attribution.errors import AttributionError
from models.attribution.methods import (
    AttributionMethod,
    AttributionSettings,
    attribute_clusters,
    check_method,
)
from models.attribution.radial import CORE_THRESHOLD, N_RADIAL_BINS, R_MAX_R500C, radial_edges
from models.attribution.stats import RATIO_GRID, SALIENCY_GRID, PooledHistograms
from models.attribution.summary import GRADIENT_METHODS, summarise_cluster
from models.attribution.summary_stats import population_summary
from models.baselines import MU_PIVOT
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

#: Per-cluster radial profiles, each (N, n_bins) (see :class:`.summary.ClusterSummary`).
PROFILE_KEYS = (
    "profile_saliency",
    "profile_fraction",
    "profile_proxy",
    "profile_proxy_fraction",
    "profile_saliency_ln",
    "profile_ratio",
    "profile_ratio_paper",
)
_SCALAR_KEYS = ("r_core", "r_core_paper", "median_agn", "median_icm", "n_agn", "n_icm")


@dataclass(frozen=True)
class SummaryConfig:
    """Binning, thresholds and bootstrap of the summaries.

    Attributes
    ----------
    n_bins, r_max : int, float
        Radial bins of r / R500c (authors: 100 bins out to 3 R500c).
    threshold : float
        Proxy / CNN weight ratio defining the core radius (authors: 10).
    n_boot : int
        Bootstrap resamples of the population numbers (0: no intervals).
    level : float
        Central probability of the intervals (0.68 ~ 1 sigma).
    seed : int
        Bootstrap seed.
    keep_maps : bool
        Keep the attribution maps (N, C, H, W) float32 in the product.
    masks : {"per_channel", "summed"}
        Multiband AGN/ICM masks per band (default) or from band-summed counts (the authors').
    chunk_size : int
        Clusters attributed and summarised at a time (bounds memory, e.g. KDE-cube maps).
    """

    n_bins: int = N_RADIAL_BINS
    r_max: float = R_MAX_R500C
    threshold: float = CORE_THRESHOLD
    n_boot: int = 1000
    level: float = 0.68
    seed: int = 0
    keep_maps: bool = True
    masks: Literal["per_channel", "summed"] = "per_channel"
    chunk_size: int = 256


@dataclass
class PopulationAttribution:
    """One attribution method applied to a population.

    Attributes
    ----------
    method : str
        ``"saliency"``, ``"integrated_gradients"`` or ``"smoothgrad"``.
    bands : {"single", "multi"}
        Channel mode of the networks.
    needs_kde : bool
        Multimodal network (KDE-cube attributions present).
    per_cluster : dict of str to ndarray
        Arrays with first axis N (clusters, in the order of ``per_cluster["cluster_index"]``):
        ``cluster_index`` (rows of the input arrays), ``fold``, ``strata``, ``log10_m_pred``,
        ``r500c_pix``, ``alpha_nphot``, ``bin_counts``, the :data:`PROFILE_KEYS`,
        ``r_core``, ``r_core_paper``, ``median_agn``, ``median_icm``, ``n_agn``, ``n_icm``,
        ``band_fractions`` (N, C), optionally ``maps`` (N, C, H, W), ``kde_sky`` (N, D, D),
        ``kde_velocity`` (N, D), ``kde_fraction`` (IG), ``ig_delta`` (IG), ``cluster_id``.
    histograms : dict of str to PooledHistograms
        Per-cluster log histograms: ``agn``, ``icm``, ``band`` and (gradient methods) ``ratio``,
        ``ratio_paper``.
    summary : dict
        Population numbers (JSON-safe; see :func:`.summary_stats.population_summary`).
    stacks : dict of str to ndarray
        Stacked profiles and pooled histograms for the product and the figures.
    config : SummaryConfig
        Settings used.
    """

    method: str
    bands: str
    needs_kde: bool
    per_cluster: dict[str, np.ndarray]
    histograms: dict[str, PooledHistograms]
    summary: dict[str, Any] = field(default_factory=dict)
    stacks: dict[str, np.ndarray] = field(default_factory=dict)
    config: SummaryConfig = field(default_factory=SummaryConfig)

    def __len__(self) -> int:
        return int(self.per_cluster["cluster_index"].shape[0])

    @property
    def radial_edges(self) -> np.ndarray:
        """Edges of the r / R500c bins."""
        return radial_edges(self.config.n_bins, self.config.r_max)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays of the npz product (see ``docs/attribution.md`` for the layout)."""
        out: dict[str, np.ndarray] = {
            "method": np.array(self.method),
            "bands": np.array(self.bands),
            "radial_edges": self.radial_edges,
            "saliency_grid": np.array([SALIENCY_GRID.lo, SALIENCY_GRID.hi, SALIENCY_GRID.n]),
            "ratio_grid": np.array([RATIO_GRID.lo, RATIO_GRID.hi, RATIO_GRID.n]),
        }
        for k, v in self.per_cluster.items():
            out[k] = np.asarray(v) if np.asarray(v).dtype != object else np.asarray(v, dtype=str)
        out.update(self.stacks)
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One dict per cluster for the ``attributions`` table (NaN -> None).

        Keys: ``cluster_index`` (row of the input arrays), ``cluster_id`` (when given),
        ``method``, ``r_core_over_r500c``, ``median_saliency_agn``, ``median_saliency_icm``,
        ``band_fractions`` (list), ``summary`` (dict).
        """
        pc = self.per_cluster
        rows = []
        for k in range(len(self)):
            summary = {
                "fold": int(pc["fold"][k]),
                "log10_m_pred": _num(pc["log10_m_pred"][k]),
                "r500c_pix": _num(pc["r500c_pix"][k]),
                "alpha_nphot": _num(pc["alpha_nphot"][k]),
                "r_core_paper_convention": _num(pc["r_core_paper"][k]),
                "n_agn_pixels": int(pc["n_agn"][k]),
                "n_icm_pixels": int(pc["n_icm"][k]),
                "product_index": k,
            }
            for opt in ("kde_fraction", "ig_delta"):
                if opt in pc:
                    summary[opt] = _num(pc[opt][k])
            row = {
                "cluster_index": int(pc["cluster_index"][k]),
                "method": self.method,
                "r_core_over_r500c": _num(pc["r_core"][k]),
                "median_saliency_agn": _num(pc["median_agn"][k]),
                "median_saliency_icm": _num(pc["median_icm"][k]),
                "band_fractions": [_num(v) for v in pc["band_fractions"][k]],
                "summary": summary,
            }
            if "cluster_id" in pc:
                cid = pc["cluster_id"][k]
                row["cluster_id"] = cid.item() if hasattr(cid, "item") else cid
            rows.append(row)
        return rows


def _num(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


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
    from models.baselines import fit_proxy_snapshot

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
