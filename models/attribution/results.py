"""What an attribution of a population returns: :class:`PopulationAttribution` and its settings.

Shared by :mod:`.population` (which computes it) and :mod:`.summary_stats` (which summarises it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from models.attribution.radial import CORE_THRESHOLD, N_RADIAL_BINS, R_MAX_R500C, radial_edges
from models.attribution.stats import RATIO_GRID, SALIENCY_GRID, PooledHistograms

__all__ = ["PROFILE_KEYS", "SummaryConfig", "PopulationAttribution"]


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
