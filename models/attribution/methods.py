"""Per-pixel attributions of the mass networks through ``captum``.

Three methods, all on the *network input* ``x`` (the standardised ``log10(N_rescaled + 1)`` image,
and for the multimodal network also the standardised KDE cube), with ``f(x)`` the predicted
log10(M500c / (h^-1 Msun)) in physical dex (the [-1, 1] target scaling is undone inside the
forward function, so every attribution is in dex per input unit):

- ``"saliency"``: vanilla gradient ``|df/dx|`` (Simonyan, Vedaldi & Zisserman 2014,
  arXiv:1312.6034), the method of Ho et al. (2023, arXiv:2303.00005, Sect. 5) and of their
  notebook (``tf.GradientTape`` on the de-regularised prediction, absolute value).
- ``"integrated_gradients"``: ``(x - x0) * integral_0^1 df/dx(x0 + a (x - x0)) da`` (Sundararajan,
  Taly & Yan 2017, ICML, eq. 1), signed; completeness ``sum = f(x) - f(x0)`` (their Prop. 1).
  Default baseline ``x0``: an empty map (zero counts, i.e. ``log10(0 + 1)`` standardised) and an
  empty galaxy density.
- ``"smoothgrad"``: the gradient averaged over ``nt_samples`` copies of ``x`` with Gaussian noise
  of standard deviation ``noise_level * (max(x) - min(x))`` per cluster and input (Smilkov et al.
  2017, arXiv:1706.03825, Sect. 3), signed (take ``abs`` for a sensitivity map).

Nothing is hand-written: :class:`captum.attr.Saliency`, :class:`captum.attr.IntegratedGradients`
and :class:`captum.attr.NoiseTunnel` do the work. Maps keep the input's orientation
(``[n, c, i, j]`` with ``i`` along sky x and ``j`` along sky y, as :mod:`models.data`), so masks
built from the count maps apply to them unchanged (the authors rotated one but not the other:
flaw 3 in ``science.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from models.attribution.errors import AttributionError
from models.data import ClusterArrays
from models.inference import ModelState, input_tensors
from models.networks import MassNetwork
from models.preprocessing import Preprocessing
from models.runtime import resolve_device, to_memory_format

__all__ = [
    "AttributionMethod",
    "METHODS",
    "BaselineKind",
    "AttributionSettings",
    "Attributions",
    "LogMassOutput",
    "attribute_inputs",
    "attribute_clusters",
    "check_method",
]

log = logging.getLogger(__name__)

AttributionMethod = Literal["saliency", "integrated_gradients", "smoothgrad"]
METHODS: tuple[str, ...] = get_args(AttributionMethod)
BaselineKind = Literal["zero_counts", "zero"]

#: Progress callback: ``(clusters done, clusters total)``.
ProgressCallback = Callable[[int, int], None]


def check_method(method: str) -> str:
    """Return ``method`` or raise :class:`AttributionError` listing the valid names."""
    if method not in METHODS:
        raise AttributionError(f"unknown attribution method {method!r}; choose one of {METHODS}")
    return method


@dataclass(frozen=True)
class AttributionSettings:
    """Knobs of the attribution methods.

    Attributes
    ----------
    batch_size : int
        Clusters per call (saliency, integrated gradients).
    n_steps : int
        Integrated gradients: quadrature points of the path integral.
    ig_method : str
        Integrated gradients: captum quadrature (``"gausslegendre"``, ``"riemann_trapezoid"``...).
    internal_batch_size : int or None
        Integrated gradients: inputs per forward pass along the path (default ``batch_size``).
    baseline : {"zero_counts", "zero"}
        Integrated gradients baseline: the standardised input of an empty map (and an empty KDE
        cube), or zero in standardised units (the training-mean pixel).
    nt_samples : int
        SmoothGrad: noisy copies per cluster (Smilkov et al. 2017 use 50; 25 is within their
        plateau).
    noise_level : float
        SmoothGrad: noise standard deviation over the cluster's input range (they recommend
        0.1-0.2).
    seed : int
        SmoothGrad noise seed; cluster ``k`` of a call uses ``seed + k`` so results do not depend
        on the batching.
    channels_last : bool
        NHWC / NDHWC inputs and weights (oneDNN's fast layout on CPU, as in training). The
        gradients are computed in fp32 whatever ``training.precision`` is: attribution maps
        are small differences of gradients, where bf16's 8-bit mantissa would show.
    """

    batch_size: int = 32
    n_steps: int = 50
    ig_method: str = "gausslegendre"
    internal_batch_size: int | None = None
    baseline: BaselineKind = "zero_counts"
    nt_samples: int = 25
    noise_level: float = 0.15
    seed: int = 0
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.baseline not in get_args(BaselineKind):
            raise AttributionError(
                f"baseline must be one of {get_args(BaselineKind)}; got {self.baseline!r}"
            )
        for name in ("batch_size", "n_steps", "nt_samples"):
            if getattr(self, name) < 1:
                raise AttributionError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.noise_level < 0:
            raise AttributionError(f"noise_level must be >= 0; got {self.noise_level}")


@dataclass
class Attributions:
    """Attribution maps of N clusters by one method.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    image : ndarray of float32, shape (N, C, H, W)
        Attribution of every input pixel, in dex per standardised input unit (``|df/dx|`` for
        saliency; signed for integrated gradients and SmoothGrad). C = 1 single band, 3 multiband.
    kde : ndarray of float32, shape (N, 1, D, D, D) or None
        Same for the KDE cube (multimodal network only).
    log10_m : ndarray of float64, shape (N,)
        Predicted log10(M500c / (h^-1 Msun)) at the input.
    delta : ndarray of float64, shape (N,) or None
        Integrated gradients: ``sum(attributions) - (f(x) - f(x0))`` (completeness residual, dex).
    """

    method: str
    image: np.ndarray
    kde: np.ndarray | None
    log10_m: np.ndarray
    delta: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.image.shape[0])


class LogMassOutput(nn.Module):
    """A mass network whose output is log10 M500c [h^-1 Msun], shape (B,).

    Undoes the [-1, 1] target scaling of :class:`~models.preprocessing.Preprocessing`
    (``log10 M = (y + 1) * half_span + min``); for a Gaussian head the mean output is used.
    """

    def __init__(self, network: MassNetwork, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.network = network
        self.half_span = float(preprocessing.target_half_span)
        self.offset = float(preprocessing.target_min) + self.half_span

    def forward(self, image: torch.Tensor, kde: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted log10 M500c of each input, (B,)."""
        return self.network(image, kde)[:, 0] * self.half_span + self.offset


def _baselines(
    pre: Preprocessing, kind: BaselineKind, needs_kde: bool
) -> tuple[float, float | None]:
    if kind == "zero":
        return 0.0, (0.0 if needs_kde else None)
    # An empty map through the fold's own float32 transform, so that empty pixels of the input
    # equal the baseline bit for bit and get an attribution of exactly zero.
    empty = np.zeros((1, 1, 1, 1), np.float32)
    img = float(pre.transform_images(empty, np.zeros(1)).reshape(-1)[0])
    kde = None
    if needs_kde:
        if pre.kde_mean is None or pre.kde_std is None:
            raise AttributionError("multimodal attribution needs preprocessing.kde_mean/kde_std")
        kde = float(pre.transform_kde(np.zeros((1, 1, 1, 1), np.float32)).reshape(-1)[0])
    return img, kde


def _range(t: torch.Tensor) -> float:
    t = t.detach()
    return float(t.max() - t.min()) if t.numel() else 0.0


def _smoothgrad(
    wrapped: LogMassOutput,
    inputs: tuple[torch.Tensor, ...],
    settings: AttributionSettings,
    first_index: int,
    device: torch.device,
) -> tuple[torch.Tensor, ...]:
    """SmoothGrad one cluster at a time (per-cluster noise scale, per-cluster seed)."""
    nt = NoiseTunnel(Saliency(wrapped))
    outs: list[list[torch.Tensor]] = [[] for _ in inputs]
    devices = [device] if device.type == "cuda" else []
    for k in range(inputs[0].shape[0]):
        one = tuple(t[k : k + 1] for t in inputs)
        stdevs = tuple(settings.noise_level * _range(t) for t in one)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(settings.seed + first_index + k)
            att = nt.attribute(
                one if len(one) > 1 else one[0],
                nt_type="smoothgrad",
                nt_samples=settings.nt_samples,
                nt_samples_batch_size=min(settings.nt_samples, settings.batch_size),
                stdevs=stdevs if len(one) > 1 else stdevs[0],
                abs=False,
            )
        att = att if isinstance(att, tuple) else (att,)
        for j, a in enumerate(att):
            outs[j].append(a.detach())
    return tuple(torch.cat(o) for o in outs)


def attribute_inputs(
    network: MassNetwork,
    preprocessing: Preprocessing,
    images: torch.Tensor,
    kde: torch.Tensor | None = None,
    *,
    method: AttributionMethod = "saliency",
    settings: AttributionSettings | None = None,
    device: str | torch.device = "cpu",
    first_index: int = 0,
    progress: ProgressCallback | None = None,
) -> Attributions:
    """Attribute the predictions of ``network`` on already-standardised inputs.

    Parameters
    ----------
    network : MassNetwork
        A built network (put in eval mode here; dropout off).
    preprocessing : Preprocessing
        The fold's statistics (target scaling, baselines).
    images : Tensor, shape (N, C, H, W)
        Standardised ``log10(N_rescaled + 1)`` images
        (:meth:`~models.preprocessing.Preprocessing.transform_images`).
    kde : Tensor, shape (N, 1, D, D, D), optional
        Standardised KDE cubes (multimodal network).
    method : {"saliency", "integrated_gradients", "smoothgrad"}
        Attribution method.
    settings : AttributionSettings, optional
        Method settings (defaults when None).
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    first_index : int
        Index of ``images[0]`` in the caller's sample (keeps SmoothGrad seeds batch-independent).
    progress : callable, optional
        Called as ``progress(done, total)`` after every batch.

    Returns
    -------
    Attributions
        Maps on CPU as float32, predictions and (integrated gradients) completeness residuals.
    """
    check_method(method)
    s = settings or AttributionSettings()
    dev = resolve_device(device)
    if network.needs_kde and kde is None:
        raise AttributionError("the multimodal network needs the KDE cube input (kde=None)")
    if not network.needs_kde:
        kde = None
    cl = s.channels_last
    wrapped = LogMassOutput(to_memory_format(network.to(dev), cl).eval(), preprocessing).eval()
    base_img, base_kde = _baselines(preprocessing, s.baseline, network.needs_kde)
    n = int(images.shape[0])
    img_out, kde_out, preds, deltas = [], [], [], []
    for a in range(0, n, s.batch_size):
        x = to_memory_format(images[a : a + s.batch_size].to(dev, torch.float32), cl)
        k = None
        if kde is not None:
            k = to_memory_format(kde[a : a + s.batch_size].to(dev, torch.float32), cl)
        with torch.no_grad():
            pred = wrapped(x, k).double().cpu()
        preds.append(pred)
        if method != "integrated_gradients":  # gradients w.r.t. the inputs themselves
            x = x.requires_grad_(True)
            k = None if k is None else k.requires_grad_(True)
        inputs = (x,) if k is None else (x, k)
        if method == "saliency":
            att = Saliency(wrapped).attribute(inputs, abs=True)
        elif method == "integrated_gradients":
            bl = (base_img,) if k is None else (base_img, base_kde)
            att, delta = IntegratedGradients(wrapped).attribute(
                inputs,
                baselines=bl,
                n_steps=s.n_steps,
                method=s.ig_method,
                internal_batch_size=s.internal_batch_size or s.batch_size,
                return_convergence_delta=True,
            )
            deltas.append(delta.detach().double().cpu())
        else:
            att = _smoothgrad(wrapped, inputs, s, first_index + a, dev)
        att = att if isinstance(att, tuple) else (att,)
        img_out.append(att[0].detach().float().contiguous().cpu())
        if k is not None:
            kde_out.append(att[1].detach().float().contiguous().cpu())
        if progress is not None:
            progress(min(a + s.batch_size, n), n)
    c, h, w = images.shape[1:]
    image = torch.cat(img_out).numpy() if img_out else np.zeros((0, c, h, w), np.float32)
    kde_maps = None
    if kde is not None:
        kde_maps = torch.cat(kde_out).numpy() if kde_out else np.zeros((0, *kde.shape[1:]))
    log10_m = torch.cat(preds).numpy() if preds else np.zeros(0)
    delta = torch.cat(deltas).numpy() if deltas else None
    return Attributions(method, image, kde_maps, log10_m, delta)


def attribute_clusters(
    model: ModelState | MassNetwork,
    preprocessing: Preprocessing,
    arrays: ClusterArrays,
    index: np.ndarray | None = None,
    *,
    method: AttributionMethod = "saliency",
    settings: AttributionSettings | None = None,
    device: str | torch.device = "cpu",
    progress: ProgressCallback | None = None,
) -> Attributions:
    """Attributions of the clusters ``index`` of ``arrays`` (all when None) under one model.

    Count maps are turned into network inputs with ``preprocessing`` (the statistics of the
    fold the model was trained on), a few batches at a time so memory stays bounded.

    Parameters
    ----------
    model : ModelState or MassNetwork
        Trained weights (built on ``device``) or a built network.
    preprocessing : Preprocessing
        The fold's statistics.
    arrays : ClusterArrays
        Count maps (+ ``kde_cubes`` for the multimodal network).
    index : ndarray of int, optional
        Rows of ``arrays`` to attribute.
    method, settings, device, progress
        As :func:`attribute_inputs`.
    """
    dev = resolve_device(device)
    network = model.build(dev) if isinstance(model, ModelState) else model.to(dev)
    idx = np.arange(len(arrays)) if index is None else np.asarray(index, dtype=np.int64)
    s = settings or AttributionSettings()
    step = 4 * s.batch_size
    parts: list[Attributions] = []
    for a in range(0, idx.size, step):
        part = idx[a : a + step]
        images, kde = input_tensors(arrays, preprocessing, part, needs_kde=network.needs_kde)
        done = a

        def _progress(k: int, _n: int, done: int = done) -> None:
            if progress is not None:
                progress(done + k, idx.size)

        parts.append(
            attribute_inputs(
                network, preprocessing, images, kde, method=method, settings=s, device=dev,
                first_index=a, progress=_progress,
            )
        )  # fmt: skip
    if not parts:
        images, kde = input_tensors(arrays, preprocessing, idx, needs_kde=network.needs_kde)
        return attribute_inputs(network, preprocessing, images, kde, method=method, settings=s)
    return Attributions(
        method,
        np.concatenate([p.image for p in parts]),
        None if parts[0].kde is None else np.concatenate([p.kde for p in parts]),
        np.concatenate([p.log10_m for p in parts]),
        None if parts[0].delta is None else np.concatenate([p.delta for p in parts]),
    )
