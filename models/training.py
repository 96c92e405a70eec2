"""Training of one cross-validation fold (one Celery task in the service layer).

As in Ho et al. (2023, Sect. 3) and the authors' Keras code: Adam (lr 1e-3), batch 50 (100
multimodal), MSE or MAE on log10 M scaled to [-1, 1], L2(1e-4) on kernels, early stopping on
the validation loss with patience 20 and the best weights restored. The validation set is a
random 10% of the *training* folds. Keras adds the L2 penalty to the loss, whose gradient is
``2 * l2 * w``: with plain (coupled) Adam that is ``weight_decay = 2 * l2`` on kernels, 0 on
biases. The monitored validation loss is the data loss alone (Keras adds the penalty to
``val_loss`` too; the penalty changes slowly, so the stopping epoch is nearly the same).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.config import LossName, RunConfig
from models.data import ClusterArrays
from models.errors import DataError
from models.folds import FoldSplit, fold_split, make_folds
from models.inference import ModelState, input_tensors, network_outputs
from models.preprocessing import Preprocessing, fit_preprocessing
from models.runtime import (
    Precision,
    autocast,
    configure_cpu,
    describe_precision,
    malloc_tuning_active,
    member_seed,
    resolve_cpu_micro_batch,
    resolve_device,
    resolve_precision,
    seed_everything,
    to_memory_format,
)

__all__ = [
    "TrainProgress",
    "FoldResult",
    "train_fold",
    "train_step",
    "parameter_groups",
    "loss_function",
]

log = logging.getLogger(__name__)

#: Move the whole training set to the GPU when it is smaller than this (bytes).
_DEVICE_CACHE_BYTES = 8 * 2**30
_LOGVAR_CLAMP = (-20.0, 10.0)


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: after every optimiser step and at the end of every epoch.

    ``val_loss`` is None during an epoch and set on the end-of-epoch report
    (``step == steps_per_epoch``).
    """

    fold: int
    member: int
    epoch: int
    max_epochs: int
    step: int
    steps_per_epoch: int
    loss: float
    val_loss: float | None = None
    best_val_loss: float | None = None
    best_epoch: int | None = None


ProgressCallback = Callable[[TrainProgress], None]


@dataclass
class FoldResult:
    """Everything one fold produced.

    Attributes
    ----------
    fold, member : int
        Fold id and ensemble member.
    split : FoldSplit
        Train / validation / test indices into the ``arrays`` given to :func:`train_fold`.
    preprocessing : Preprocessing
        Training-fold statistics (save with the weights).
    model_state : ModelState
        Network spec and the best (restored) weights.
    test_prediction : ndarray, shape (n_test,)
        Out-of-fold log10 M500c of ``split.test`` [h^-1 Msun].
    test_sigma : ndarray or None
        Per-cluster standard deviation in dex (Gaussian head only).
    history : dict
        ``train_loss`` and ``val_loss`` per epoch, ``best_epoch`` (0-based), ``epochs_run``,
        ``stopped_early``.
    seconds : float
        Wall time of training and prediction.
    device : str
        Where it ran.
    precision : {"fp32", "bf16", "fp16"}
        The arithmetic it ran in (``config.training.precision`` resolved on ``device``; also in
        ``history["precision"]``).
    """

    fold: int
    member: int
    split: FoldSplit
    preprocessing: Preprocessing
    model_state: ModelState
    test_prediction: np.ndarray
    test_sigma: np.ndarray | None
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"


def parameter_groups(model: nn.Module, l2: float) -> list[dict]:
    """Adam groups: conv/dense kernels with weight decay ``2 * l2`` (Keras L2), the rest none."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_kernel = name == "weight" and isinstance(module, nn.Conv2d | nn.Conv3d | nn.Linear)
            (decay if is_kernel else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": 2.0 * l2},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def loss_function(name: LossName) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return the summed (not averaged) per-batch loss of ``name``; the caller divides by the batch size.

    ``gaussian_nll`` takes outputs (B, 2) = (mean, log variance) in scaled-target units and
    returns ``0.5 * sum(log var + (y - mean)^2 / var)`` (Nix & Weigend 1994).
    """
    if name == "mse":
        return lambda out, y: F.mse_loss(out[:, 0], y, reduction="sum")
    if name == "mae":
        return lambda out, y: F.l1_loss(out[:, 0], y, reduction="sum")
    if name == "gaussian_nll":

        def nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            logvar = out[:, 1].clamp(*_LOGVAR_CLAMP)
            return 0.5 * (logvar + (y - out[:, 0]) ** 2 * torch.exp(-logvar)).sum()

        return nll
    raise DataError(f"unknown loss {name!r}; choose one of ['mse', 'mae', 'gaussian_nll']")


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    kde: torch.Tensor | None,
    target: torch.Tensor,
    *,
    device: torch.device,
    channels_last: bool = True,
    micro_batch: int | None = None,
    amp: bool = False,
    scaler: torch.amp.GradScaler | None = None,
    precision: Precision = "fp32",
) -> float:
    """One optimiser step on one batch; return the batch-mean loss.

    With ``micro_batch`` the forward/backward passes run on chunks of that size and the
    gradients accumulate (each chunk's summed loss divided by the full batch size), so the
    update equals the full-batch one; smaller activations stay in cache on CPU.

    ``precision`` (from :func:`models.runtime.resolve_precision`) autocasts the forward pass;
    the loss, gradients and weights stay fp32. ``amp=True`` with ``precision="fp32"`` is the
    older spelling: CUDA autocast, fp32 on CPU.
    """
    cast: Precision | bool = amp if precision == "fp32" else precision
    nb = len(target)
    micro = micro_batch or nb
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    scaled = scaler is not None and scaler.is_enabled()
    for a in range(0, nb, micro):
        x = to_memory_format(images[a : a + micro].to(device, non_blocking=True), channels_last)
        k = None
        if kde is not None:
            k = to_memory_format(kde[a : a + micro].to(device, non_blocking=True), channels_last)
        y = target[a : a + micro].to(device, non_blocking=True)
        with autocast(device, cast):
            out = model(x, k)
        loss = loss_fn(out.float(), y) / nb
        (scaler.scale(loss) if scaled else loss).backward()
        total += float(loss.detach())
    if scaled:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return total


def _evaluate(
    model: nn.Module,
    images: torch.Tensor,
    kde: torch.Tensor | None,
    y: torch.Tensor,
    loss: Callable,
    *,
    batch_size: int,
    device: torch.device,
    channels_last: bool,
    precision: Precision,
) -> float:
    out = network_outputs(
        model,
        images,
        kde,
        batch_size=batch_size,
        device=device,
        channels_last=channels_last,
        precision=precision,
    )
    return float(loss(out, y.cpu())) / max(len(y), 1)


def train_fold(
    arrays: ClusterArrays,
    config: RunConfig,
    fold: int,
    *,
    folds: np.ndarray | None = None,
    member: int = 0,
    progress: ProgressCallback | None = None,
    device: str | torch.device | None = None,
) -> FoldResult:
    """Train the configured network on every fold but ``fold`` and predict ``fold``.

    Parameters
    ----------
    arrays : ClusterArrays
        All clusters, with labels (and ``kde_cubes`` for the multimodal network).
    config : RunConfig
        Network, training, data and CV settings.
    fold : int
        The held-out fold.
    folds : ndarray of int, optional
        Fold id per cluster; default :func:`models.folds.make_folds` from ``config.cv``.
    member : int
        Ensemble member (changes the seed of initialisation, shuffling and dropout only; the
        validation split is shared by the members of a fold).
    progress : callable, optional
        Receives a :class:`TrainProgress` after every step and epoch.
    device : str or torch.device, optional
        Overrides ``config.training.device``.
    """
    t0 = time.perf_counter()
    tc = config.training
    dev = resolve_device(device if device is not None else tc.device)
    if dev.type == "cpu":
        configure_cpu(tc.num_threads)
    if folds is None:
        folds = make_folds(arrays, config.cv.scheme, config.cv.box_size)
    split = fold_split(folds, fold, tc.val_fraction, tc.seed)
    seed = member_seed(tc.seed, fold, member)
    seed_everything(seed)

    model_cls_spec = config.model.model_dump(mode="json")
    model = config.build_network()
    needs_kde = model.needs_kde
    fit_idx = np.concatenate([split.train, split.val])  # statistics from the training folds
    pre = fit_preprocessing(
        arrays,
        fit_idx,
        bands=model.bands,
        reference_counts=config.data.reference_counts,
        with_kde=needs_kde,
    )
    labels = arrays.require_labels()
    x_tr, k_tr = input_tensors(arrays, pre, split.train, needs_kde=needs_kde)
    x_va, k_va = input_tensors(arrays, pre, split.val, needs_kde=needs_kde)
    y_tr = torch.as_tensor(pre.scale_target(labels[split.train]), dtype=torch.float32)
    y_va = torch.as_tensor(pre.scale_target(labels[split.val]), dtype=torch.float32)

    nbytes = sum(t.numel() * 4 for t in (x_tr, k_tr) if t is not None)
    on_device = dev.type == "cpu" or nbytes < _DEVICE_CACHE_BYTES
    if on_device and dev.type != "cpu":
        x_tr, y_tr = x_tr.to(dev), y_tr.to(dev)
        k_tr = None if k_tr is None else k_tr.to(dev)
    cl = tc.channels_last
    model = to_memory_format(model.to(dev), cl)
    opt = torch.optim.Adam(parameter_groups(model, tc.l2), lr=tc.learning_rate)
    prec = resolve_precision(tc.precision, dev, amp=tc.amp)
    log.info("fold %d member %d: %s", fold, member, describe_precision(tc.precision, prec, dev))
    scaler = torch.amp.GradScaler("cuda", enabled=prec == "fp16") if dev.type == "cuda" else None
    loss_fn = loss_function(tc.loss)
    gen = torch.Generator().manual_seed(seed)

    n_tr = len(y_tr)
    bs = tc.batch_size
    steps = math.ceil(n_tr / bs)
    micro = None
    if dev.type == "cpu":
        micro = resolve_cpu_micro_batch(tc.cpu_micro_batch, volumetric=needs_kde)
        log.info(
            "fold %d member %d: CPU micro-batch %s (setting %r, tuned allocator %s)",
            fold, member, micro or "none (full batch)", tc.cpu_micro_batch,
            malloc_tuning_active(),
        )  # fmt: skip
    eval_bs = (micro or bs) if dev.type == "cpu" else tc.eval_batch_size
    history: dict = {"train_loss": [], "val_loss": []}
    best_val, best_epoch, best_state, wait = math.inf, -1, None, 0
    stopped_early = False
    for epoch in range(tc.max_epochs):
        model.train()
        perm = torch.randperm(n_tr, generator=gen)
        running = 0.0
        for step in range(steps):
            bidx = perm[step * bs : (step + 1) * bs].to(y_tr.device)
            nb = len(bidx)
            batch_loss = train_step(
                model, opt, loss_fn, x_tr[bidx], None if k_tr is None else k_tr[bidx], y_tr[bidx],
                device=dev, channels_last=cl, micro_batch=micro, scaler=scaler, precision=prec,
            )  # fmt: skip
            running += batch_loss * nb
            if progress is not None:
                progress(
                    TrainProgress(fold, member, epoch, tc.max_epochs, step + 1, steps, batch_loss)
                )
        train_loss = running / n_tr
        val_loss = _evaluate(
            model, x_va, k_va, y_va, loss_fn,
            batch_size=eval_bs, device=dev, channels_last=cl, precision=prec,
        )  # fmt: skip
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        if val_loss < best_val:
            best_val, best_epoch, wait = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            wait += 1
        if progress is not None:
            progress(
                TrainProgress(
                    fold, member, epoch, tc.max_epochs, steps, steps, train_loss,
                    val_loss, best_val, best_epoch,
                )
            )  # fmt: skip
        if not math.isfinite(train_loss):
            log.warning(
                "fold %d member %d: non-finite training loss at epoch %d", fold, member, epoch
            )
            break
        if wait >= tc.patience:
            stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.update(
        best_epoch=best_epoch,
        epochs_run=len(history["train_loss"]),
        stopped_early=stopped_early,
        precision=prec,
        cpu_micro_batch=micro,
    )
    state = ModelState.from_module(model_cls_spec, model)

    x_te, k_te = input_tensors(arrays, pre, split.test, needs_kde=needs_kde)
    raw = network_outputs(
        model, x_te, k_te, batch_size=eval_bs, device=dev, channels_last=cl, precision=prec
    ).double()
    pred = pre.unscale_target(raw[:, 0].numpy())
    sigma = np.exp(0.5 * raw[:, 1].numpy()) * pre.target_half_span if raw.shape[1] == 2 else None
    seconds = time.perf_counter() - t0
    log.info(
        "fold %d member %d: %d epochs (best %d, val %.4g) in %.1f s on %s (%s)",
        fold, member, history["epochs_run"], best_epoch, best_val, seconds, dev, prec,
    )  # fmt: skip
    return FoldResult(
        fold, member, split, pre, state, pred, sigma, history, seconds, str(dev), prec
    )
