"""Trained-model state, input tensors and batched prediction.

:func:`predict` is all the service layer needs at inference: a :class:`ModelState` (network
spec + weights), the fold's :class:`~models.preprocessing.Preprocessing` and a
:class:`~models.data.ClusterArrays` of count maps (labels not needed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.data import ClusterArrays
from models.errors import CheckpointError, DataError
from models.networks import MassNetwork
from models.preprocessing import Preprocessing
from models.registry import build_network
from models.runtime import (
    Precision,
    PrecisionSetting,
    autocast,
    cpu_inference_batch,
    describe_precision,
    resolve_device,
    resolve_precision,
    to_memory_format,
)

__all__ = ["ModelState", "predict", "input_tensors", "network_outputs"]

log = logging.getLogger(__name__)


@dataclass
class ModelState:
    """A network spec (``{"kind", "args"}``) and its weights.

    Attributes
    ----------
    network : dict
        ``{"kind": "single" | "multi" | "multimodal", "args": {...}}``.
    state_dict : dict of str to Tensor
        Weights (on CPU).
    """

    network: dict[str, Any]
    state_dict: dict[str, torch.Tensor]

    @classmethod
    def from_module(cls, spec: Mapping[str, Any], model: torch.nn.Module) -> ModelState:
        """Snapshot ``model``'s weights (copied to CPU, contiguous)."""
        sd = {
            k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
        }
        return cls(
            network={"kind": spec["kind"], "args": dict(spec.get("args") or {})}, state_dict=sd
        )

    def build(self, device: torch.device | str = "cpu") -> MassNetwork:
        """Build the network with these weights, in eval mode, on ``device``."""
        model = build_network(self.network)
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()

    def save(self, path: str | Path) -> Path:
        """``torch.save`` weights to ``path`` (``.pt``) and the spec next to it (``.json``)."""
        path = Path(path)
        torch.save(self.state_dict, path)
        path.with_suffix(".json").write_text(json.dumps(self.network, sort_keys=True, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelState:
        """Read what :meth:`save` wrote."""
        path = Path(path)
        spec_path = path.with_suffix(".json")
        if not path.is_file() or not spec_path.is_file():
            raise CheckpointError(f"weights {path} or network spec {spec_path} is missing")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for corrupt files
            raise CheckpointError(f"cannot read weights {path}: {exc}") from exc
        return cls(network=json.loads(spec_path.read_text()), state_dict=sd)


def input_tensors(
    arrays: ClusterArrays,
    preprocessing: Preprocessing,
    index: np.ndarray | None = None,
    *,
    needs_kde: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Network inputs of the clusters ``index`` (all when None), as float32 CPU tensors."""
    idx = np.arange(len(arrays)) if index is None else np.asarray(index, dtype=np.int64)
    images = preprocessing.transform_images(arrays.images[idx], arrays.redshift[idx])
    kde = None
    if needs_kde:
        if arrays.kde_cubes is None:
            raise DataError(
                "the multimodal network needs arrays.kde_cubes; compute them with "
                "models.kde.kde_cubes(arrays.galaxies, ...) (or models.cv_run.ensure_kde)"
            )
        kde = preprocessing.transform_kde(arrays.kde_cubes[idx])
    return images, kde


def network_outputs(
    model: MassNetwork,
    images: torch.Tensor,
    kde: torch.Tensor | None,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    channels_last: bool = True,
    amp: bool = False,
    precision: Precision = "fp32",
) -> torch.Tensor:
    """Raw outputs (N, 1 or 2) of ``model`` in eval mode, batched, on CPU as float32.

    ``precision`` (resolved, see :func:`models.runtime.resolve_precision`) autocasts the
    forward passes; ``amp=True`` with ``precision="fp32"`` is the older spelling (CUDA only).
    """
    device = torch.device(device)
    model.eval()
    outs = []
    cast: Precision | bool = amp if precision == "fp32" else precision
    with torch.inference_mode(), autocast(device, cast):
        for a in range(0, images.shape[0], batch_size):
            x = to_memory_format(
                images[a : a + batch_size].to(device, non_blocking=True), channels_last
            )
            k = None
            if kde is not None:
                k = to_memory_format(
                    kde[a : a + batch_size].to(device, non_blocking=True), channels_last
                )
            outs.append(model(x, k).float().cpu())
    if not outs:
        return torch.zeros((0, 2 if model.head == "gaussian" else 1))
    return torch.cat(outs)


def predict(
    model_state: ModelState | MassNetwork,
    preprocessing: Preprocessing,
    arrays: ClusterArrays,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
    return_sigma: bool = False,
    precision: PrecisionSetting = "auto",
) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
    """log10 M500c [h^-1 Msun] of every cluster in ``arrays``, batched.

    Parameters
    ----------
    model_state : ModelState or MassNetwork
        Trained weights (or an already built network).
    preprocessing : Preprocessing
        The statistics of the fold the model was trained on.
    arrays : ClusterArrays
        Count maps (+ KDE cubes for the multimodal network); labels are not used.
    batch_size : int, optional
        Clusters per forward pass; default 256 on CUDA; on CPU
        :func:`models.runtime.cpu_inference_batch` (128 for the image CNNs with the CLI's
        allocator, 50 without; 10 for the multimodal network), the fastest in
        ``benchmarks/bench_inference.py``.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    channels_last : bool
        NHWC inputs (faster on CPU with oneDNN).
    return_sigma : bool
        Also return the per-cluster standard deviation in dex (Gaussian head), else None.
    precision : {"auto", "fp32", "bf16"}
        ``auto``: bf16 autocast where the hardware has native bf16 (CUDA with bf16, CPUs with
        AVX512-BF16/AMX-BF16), fp32 elsewhere (:func:`models.runtime.resolve_precision`); the
        choice is logged.

    Returns
    -------
    log10_m : ndarray, shape (N,)
        Predicted log10 M500c; with ``return_sigma`` a tuple ``(log10_m, sigma_dex or None)``.
    """
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    log.info("predict: %s", describe_precision(precision, prec, dev))
    if isinstance(model_state, ModelState):
        model = model_state.build(dev)
    else:
        model = model_state.to(dev)
    if batch_size is None:
        volumetric = bool(getattr(model, "needs_kde", False))
        batch_size = cpu_inference_batch(volumetric=volumetric) if dev.type == "cpu" else 256
    model = to_memory_format(model, channels_last)
    chunks = []
    n = len(arrays)
    step = max(batch_size * 4, 256)  # transform in chunks: bounded memory
    for a in range(0, n, step):
        idx = np.arange(a, min(a + step, n))
        images, kde = input_tensors(arrays, preprocessing, idx, needs_kde=model.needs_kde)
        chunks.append(
            network_outputs(
                model,
                images,
                kde,
                batch_size=batch_size,
                device=dev,
                channels_last=channels_last,
                precision=prec,
            )
        )
    width = 2 if model.head == "gaussian" else 1
    raw = (torch.cat(chunks) if chunks else torch.zeros((0, width))).double()
    mean = preprocessing.unscale_target(raw[:, 0].numpy())
    if not return_sigma:
        return mean
    sigma = None
    if raw.shape[1] == 2:
        sigma = np.exp(0.5 * raw[:, 1].numpy()) * preprocessing.target_half_span
    return mean, sigma
