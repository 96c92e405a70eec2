"""Model-parameter randomisation test of an attribution method (Adebayo et al. 2018).

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018, NeurIPS, "Sanity Checks for Saliency
Maps", Sect. 3): if a saliency method explains what a *trained* network learned, its maps must
change when the weights are replaced by random ones. They measure the similarity of the maps of
the trained and randomised networks by the Spearman rank correlation of the absolute values, for
a fully randomised network and cascading from the top layer down. A faithful method gives a low
correlation; a method whose maps survive randomisation only reflects the input (an edge
detector).

:func:`randomisation_check` does both with the networks' own initialisation (Glorot-uniform
kernels, zero biases, as Keras) and, as a control, a small perturbation of the trained weights
(Gaussian noise of ``perturbation`` x each tensor's standard deviation), whose maps should stay
close to the trained ones: that shows the correlation can tell "the same function" from
"another function" on these inputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from models.attribution.errors import AttributionError
from models.attribution.methods import AttributionMethod, AttributionSettings, attribute_clusters
from models.data import ClusterArrays
from models.inference import ModelState
from models.preprocessing import Preprocessing
from models.registry import build_network
from models.runtime import resolve_device

__all__ = ["RandomisationCheck", "randomisation_check", "spearman_per_cluster", "randomised_state"]


@dataclass
class RandomisationCheck:
    """Rank correlations between the trained model's maps and others (per cluster).

    Attributes
    ----------
    method : str
        Attribution method tested.
    random : ndarray, shape (N,)
        Spearman correlation of ``|map|`` trained vs fully randomised weights.
    perturbed : ndarray, shape (N,) or None
        Same against slightly perturbed trained weights (the control).
    cascade : dict of str to float
        Median correlation after randomising the layers from the output down to (and including)
        the named one, in that order (empty unless requested).
    """

    method: str
    random: np.ndarray
    perturbed: np.ndarray | None = None
    cascade: dict[str, float] = field(default_factory=dict)

    @property
    def median_random(self) -> float:
        """Median Spearman correlation, trained vs randomised."""
        return float(np.median(self.random))

    @property
    def median_perturbed(self) -> float | None:
        """Median Spearman correlation, trained vs perturbed (the control)."""
        return None if self.perturbed is None else float(np.median(self.perturbed))

    def passed(self, max_random: float = 0.5) -> bool:
        """Return whether the maps changed: median correlation below ``max_random``."""
        return self.median_random < max_random


def spearman_per_cluster(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of ``|a[n]|`` and ``|b[n]|`` for every cluster ``n``."""
    x = np.abs(np.asarray(a, dtype=np.float64)).reshape(len(a), -1)
    y = np.abs(np.asarray(b, dtype=np.float64)).reshape(len(b), -1)
    if x.shape != y.shape:
        raise AttributionError(f"maps of shapes {np.shape(a)} and {np.shape(b)} differ")
    out = np.empty(len(x))
    for n in range(len(x)):
        if np.ptp(x[n]) == 0 or np.ptp(y[n]) == 0:
            out[n] = np.nan  # a constant map has no ranking
        else:
            out[n] = spearmanr(x[n], y[n]).statistic
    return out


def _layers(model: nn.Module) -> list[str]:
    """Names of the modules holding weights, in forward (registration) order."""
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Conv3d | nn.Linear)
    ]


def randomised_state(
    model_state: ModelState, *, seed: int = 0, layers: list[str] | None = None
) -> ModelState:
    """Trained state with the weights of ``layers`` (all when None) re-drawn from the init.

    The random weights come from building the same network under ``torch.manual_seed(seed)``
    (the networks' Keras-like initialisation), without touching the global random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build_network(model_state.network)
    random_sd = fresh.state_dict()
    names = _layers(fresh) if layers is None else layers
    unknown = sorted(set(names) - set(_layers(fresh)))
    if unknown:
        raise AttributionError(f"unknown layers {unknown}; the network has {_layers(fresh)}")
    sd = {k: v.clone() for k, v in model_state.state_dict.items()}
    for name in names:
        for suffix in ("weight", "bias"):
            key = f"{name}.{suffix}"
            if key in sd:
                sd[key] = random_sd[key].clone()
    return ModelState(copy.deepcopy(model_state.network), sd)


def _perturbed_state(model_state: ModelState, scale: float, seed: int) -> ModelState:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model_state.state_dict.items():
        if v.is_floating_point() and v.numel() > 1:
            sd[k] = v + scale * v.std() * torch.randn(v.shape, generator=g, dtype=v.dtype)
        else:
            sd[k] = v.clone()
    return ModelState(copy.deepcopy(model_state.network), sd)


def randomisation_check(
    model_state: ModelState,
    preprocessing: Preprocessing,
    arrays: ClusterArrays,
    index: np.ndarray | None = None,
    *,
    method: AttributionMethod = "saliency",
    seed: int = 0,
    perturbation: float | None = 0.02,
    cascade: bool = False,
    settings: AttributionSettings | None = None,
    device: str | torch.device = "cpu",
) -> RandomisationCheck:
    """Compare a trained model's attribution maps with those of randomised weights.

    Parameters
    ----------
    model_state : ModelState
        The trained model (spec + weights, so it can be rebuilt with other weights).
    preprocessing : Preprocessing
        Its fold's statistics.
    arrays : ClusterArrays
        Clusters to explain (rows ``index``; all when None).
    index : ndarray of int, optional
        Rows of ``arrays``.
    method : str
        Attribution method under test.
    seed : int
        Seed of the random weights (and of the perturbation).
    perturbation : float or None
        Relative size of the control perturbation; None skips the control.
    cascade : bool
        Also randomise cumulatively from the output layer down (Adebayo et al. Fig. 2).
    settings : AttributionSettings, optional
        Method settings.
    device : str or torch.device
        Where to run.
    """
    dev = resolve_device(device)
    if not isinstance(model_state, ModelState):
        raise AttributionError(
            "randomisation_check needs a ModelState (network spec + weights) to rebuild the "
            "network; wrap a module with ModelState.from_module(spec, model)"
        )
    state = model_state

    def maps(s: ModelState) -> np.ndarray:
        return attribute_clusters(
            s, preprocessing, arrays, index, method=method, settings=settings, device=dev
        ).image

    trained = maps(state)
    rnd = spearman_per_cluster(trained, maps(randomised_state(state, seed=seed)))
    pert = None
    if perturbation is not None:
        pert = spearman_per_cluster(trained, maps(_perturbed_state(state, perturbation, seed)))
    steps: dict[str, float] = {}
    if cascade:
        names = _layers(state.build("cpu"))
        for k in range(len(names) - 1, -1, -1):
            s = randomised_state(state, seed=seed, layers=names[k:])
            steps[names[k]] = float(np.nanmedian(spearman_per_cluster(trained, maps(s))))
    return RandomisationCheck(method, rnd, pert, steps)
