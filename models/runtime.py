"""Execution helpers: seeding, device resolution, CPU threads, memory format, precision.

Precision: ``resolve_precision("auto", device)`` picks bf16 autocast only where the hardware
computes bf16 natively: on CUDA when ``torch.cuda.is_bf16_supported()`` (fp16 with a gradient
scaler on older GPUs), on CPUs whose ``/proc/cpuinfo`` flags include ``avx512_bf16`` or
``amx_bf16`` (oneDNN then uses AVX512-BF16 / AMX tiles). Other CPUs (AVX2 only, e.g. an
earlier AMD EPYC test machine) would emulate bf16 convolutions, slower than fp32, so ``"auto"``
stays fp32 there; ``"bf16"`` forces autocast anyway (it works on every CPU, just slowly).
Measured with ``python -m benchmarks --only train`` on a quiet 2-core AMD EPYC (Zen 4,
``avx512_bf16``, no AMX), 2026-11-29: the trainer's step at 447 images/s in bf16 against 279 in
fp32 (1.60x) and 338 for the authors' Keras. (A first measurement on the same CPU while ~10
other processes shared its 2 cores had bf16 at 0.47x fp32: timings under load mislead.)
``torch.backends.cpu.get_cpu_capability()`` is logged but not used for the decision: it reports
the vector ISA (``"AVX2"``, ``"AVX512"``...), and AVX512 without the BF16 extension emulates.

Allocator: with glibc's default allocator every activation of a training step is a fresh
``mmap`` (page faults, zero-filling); the entry points start with raised malloc thresholds
(:mod:`astro.allocator`), and ``cpu_micro_batch: auto`` then runs the image CNNs on the full
batch (:func:`resolve_cpu_micro_batch`): micro-batching was a workaround for the same page
faults (chunks of 10 stay under glibc's adaptive threshold).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

from astro.allocator import (
    LEGACY_CPU_MICRO_BATCH,
    MALLOC_TUNABLES,
    malloc_tuned_environ,
    malloc_tuning_active,
    reexec_with_tuned_malloc,
)
from models.errors import ModelConfigError

__all__ = [
    "seed_everything",
    "resolve_device",
    "configure_cpu",
    "to_memory_format",
    "autocast",
    "member_seed",
    "PrecisionSetting",
    "Precision",
    "cpu_flags",
    "cpu_has_native_bf16",
    "resolve_precision",
    "describe_precision",
    "MALLOC_TUNABLES",
    "malloc_tuned_environ",
    "malloc_tuning_active",
    "reexec_with_tuned_malloc",
    "resolve_cpu_micro_batch",
    "cpu_inference_batch",
]

#: What a config asks for: ``auto`` = bf16 only where natively supported (see the module doc).
PrecisionSetting = Literal["auto", "fp32", "bf16"]
#: What actually runs: fp32, or autocast to bf16 / fp16 (fp16 on CUDA only).
Precision = Literal["fp32", "bf16", "fp16"]

#: ``/proc/cpuinfo`` flags of native bf16 arithmetic on x86 (Cooper Lake, Zen 4, Sapphire Rapids+).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_CPUINFO = Path("/proc/cpuinfo")

log = logging.getLogger(__name__)


def cpu_inference_batch(*, volumetric: bool = False, tuned: bool | None = None) -> int:
    """Return the default clusters per forward pass of ``predict`` on a CPU.

    Single-band ``predict`` on the 2-core Zen 4 EPYC, 2026-11-30
    (``benchmarks/bench_inference.py --n 512 --batches 10,50,128``, channels-last): glibc's
    default allocator 1036 / 1280 / 772 maps/s at batch 10 / 50 / 128, the tuned one 1066 /
    1358 / 1425. The multimodal network keeps batches of 10 (a 64^3 cube's activations).
    """
    if volumetric:
        return LEGACY_CPU_MICRO_BATCH
    tuned = malloc_tuning_active() if tuned is None else tuned
    return 128 if tuned else 50


def resolve_cpu_micro_batch(
    setting: int | str | None, *, volumetric: bool = False, tuned: bool | None = None
) -> int | None:
    """Return the CPU micro-batch a training run uses (None: the full batch).

    An integer or None is used as given. ``"auto"``: the full batch for the image CNNs when
    the tuned allocator is active (``tuned``, default :func:`malloc_tuning_active`), else
    :data:`LEGACY_CPU_MICRO_BATCH` (and always for ``volumetric`` networks, the multimodal
    one). The update is the same either way (gradients of the chunks are summed); only the
    order of floating-point sums differs.
    """
    if setting != "auto":
        return None if setting is None else int(setting)
    tuned = malloc_tuning_active() if tuned is None else tuned
    return None if tuned and not volumetric else LEGACY_CPU_MICRO_BATCH


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def member_seed(seed: int, fold: int, member: int) -> int:
    """Distinct, reproducible seed of ensemble ``member`` on ``fold``."""
    return int(np.random.SeedSequence([seed, fold, member]).generate_state(1)[0])


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without a GPU raises.

    Raises
    ------
    ModelConfigError
        CUDA requested but not available, or an unknown device string.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelConfigError(f"device {name!r} requested but CUDA is not available")
        return torch.device(name)
    raise ModelConfigError(f"unknown device {name!r}; choose 'auto', 'cpu', 'cuda' or 'cuda:N'")


def configure_cpu(num_threads: int | None) -> None:
    """Set torch intra-op threads (when given) and make sure oneDNN is on.

    The OpenMP wait policy cannot be changed once torch is imported: processes that share
    CPUs should start with ``OMP_WAIT_POLICY=PASSIVE`` (the ``clustermass`` CLI sets it).
    """
    if num_threads is not None and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    torch.backends.mkldnn.enabled = True


def to_memory_format(x: torch.Tensor | nn.Module, channels_last: bool) -> torch.Tensor | nn.Module:
    """NHWC (4-D) or NDHWC (5-D) layout when ``channels_last``; modules get both formats."""
    if not channels_last:
        return x
    if isinstance(x, nn.Module):
        for m in x.modules():
            if isinstance(m, nn.Conv2d):
                m.to(memory_format=torch.channels_last)
            elif isinstance(m, nn.Conv3d):
                m.to(memory_format=torch.channels_last_3d)
        return x
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x


def cpu_flags(cpuinfo: str | Path = _CPUINFO) -> frozenset[str] | None:
    """CPU feature flags from the first ``flags`` line of ``/proc/cpuinfo``; None if unreadable."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def cpu_has_native_bf16(flags: Iterable[str] | None = None) -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16); never assumed.

    Parameters
    ----------
    flags : iterable of str, optional
        CPU flags; default :func:`cpu_flags`. Where ``/proc/cpuinfo`` cannot be read (not
        Linux), torch's own probes ``torch.cpu._is_avx512_bf16_supported`` and
        ``_is_amx_tile_supported`` decide, and False when they are missing.
    """
    found = cpu_flags() if flags is None else frozenset(flags)
    if found is not None:
        return bool(NATIVE_BF16_FLAGS & found)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def resolve_precision(
    setting: PrecisionSetting, device: torch.device, *, amp: bool = True
) -> Precision:
    """Return the precision a run actually uses for ``setting`` on ``device``.

    Parameters
    ----------
    setting : {"auto", "fp32", "bf16"}
        ``auto``: mixed precision where the hardware runs it natively (CUDA: bf16, or fp16 on
        GPUs without bf16; CPU: bf16 with AVX512-BF16/AMX, else fp32). ``fp32``: no autocast.
        ``bf16``: bf16 autocast wherever asked (emulated, slower, on CPUs without native bf16;
        a warning is logged).
    device : torch.device
        Where the network runs.
    amp : bool
        ``TrainingConfig.amp``: False turns ``auto`` into fp32 on every device.

    Raises
    ------
    ModelConfigError
        Unknown setting, or ``bf16`` on a GPU without bf16 support.
    """
    if setting not in get_args(PrecisionSetting):
        raise ModelConfigError(
            f"unknown precision {setting!r}; choose one of {list(get_args(PrecisionSetting))}"
        )
    cuda = device.type == "cuda"
    if setting == "fp32":
        return "fp32"
    if setting == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise ModelConfigError(f"precision 'bf16' requested but {device} has no bf16 support")
        if not cuda and not cpu_has_native_bf16():
            log.warning(
                "precision bf16 forced on a CPU without AVX512-BF16/AMX-BF16 (%s): bf16 is "
                "emulated and slower than fp32",
                torch.backends.cpu.get_cpu_capability(),
            )
        return "bf16"
    if not amp:
        return "fp32"
    if cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def describe_precision(
    setting: PrecisionSetting, precision: Precision, device: torch.device
) -> str:
    """One log line: what was asked, what runs, and why (CPU capability and bf16 flags)."""
    why = ""
    if device.type == "cpu":
        flags = cpu_flags()
        native = sorted(NATIVE_BF16_FLAGS & flags) if flags is not None else "no /proc/cpuinfo"
        why = (
            f" (CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"native bf16 flags: {native or 'none'})"
        )
    return f"precision {setting!r} -> {precision} on {device}{why}"


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision | bool) -> Iterator[None]:
    """Autocast to ``precision`` (``"bf16"`` / ``"fp16"``) on ``device``; fp32 is a no-op.

    ``True`` / ``False`` are the older spelling: True is :func:`resolve_precision` ``"auto"``
    on CUDA and fp32 on CPU (what ``amp`` meant before the precision setting).
    """
    if isinstance(precision, bool):
        precision = (
            resolve_precision("auto", device) if precision and device.type == "cuda" else "fp32"
        )
    if precision == "fp32":
        yield
        return
    if precision == "fp16" and device.type != "cuda":
        raise ModelConfigError("fp16 autocast is for CUDA only; use 'bf16' on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device.type, dtype=dtype):
        yield
