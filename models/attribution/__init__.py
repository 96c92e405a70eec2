"""Attributions of the mass networks: which pixels they use (Ho et al. 2023, Sect. 5).

Pure torch/numpy (no database). Modules:

- :mod:`.methods`: saliency, integrated gradients and SmoothGrad through captum;
- :mod:`.radial`: r / R500c geometry, radial profiles, N_phot proxy weight, core radius;
- :mod:`.pixels`: AGN / ICM pixel masks, masked medians, per-band fractions;
- :mod:`.summary`: everything measured on one cluster's map;
- :mod:`.stats`, :mod:`.summary_stats`: pooled medians, bootstrap intervals, stacked profiles;
- :mod:`.population`: :func:`attribute_population`, the entry point of an attribution job;
- :mod:`.runs`: per-fold models of a run directory; writing the npz/JSON products;
- :mod:`.sanity`: the model-randomisation check of Adebayo et al. (2018);
- :mod:`.figures`: PNG figures (matplotlib, Agg; import it explicitly).
"""

from models.attribution.errors import AttributionError
from models.attribution.methods import (
    METHODS,
    AttributionMethod,
    Attributions,
    AttributionSettings,
    LogMassOutput,
    attribute_clusters,
    attribute_inputs,
)
from models.attribution.pixels import agn_icm_masks, band_fractions, masked_median
from models.attribution.population import (
    PopulationAttribution,
    SummaryConfig,
    attribute_population,
    nphot_slope,
)
from models.attribution.radial import (
    core_radius,
    proxy_weight,
    r500c_pixels,
    radial_profile,
    saliency_log_counts,
)
from models.attribution.runs import RunModels, load_run_models, write_population
from models.attribution.sanity import RandomisationCheck, randomisation_check
from models.attribution.summary import ClusterSummary, summarise_cluster

__all__ = [
    "AttributionError",
    "METHODS",
    "AttributionMethod",
    "Attributions",
    "AttributionSettings",
    "LogMassOutput",
    "attribute_clusters",
    "attribute_inputs",
    "agn_icm_masks",
    "band_fractions",
    "masked_median",
    "PopulationAttribution",
    "SummaryConfig",
    "attribute_population",
    "nphot_slope",
    "core_radius",
    "proxy_weight",
    "r500c_pixels",
    "radial_profile",
    "saliency_log_counts",
    "RunModels",
    "load_run_models",
    "write_population",
    "RandomisationCheck",
    "randomisation_check",
    "ClusterSummary",
    "summarise_cluster",
]
