"""Execution helpers: seeding, device resolution, CPU threads, memory format, autocast."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from models.errors import ModelConfigError

__all__ = [
    "seed_everything",
    "resolve_device",
    "configure_cpu",
    "to_memory_format",
    "autocast",
    "member_seed",
]

log = logging.getLogger(__name__)


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


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool) -> Iterator[None]:
    """bf16 (or fp16) autocast on CUDA when ``enabled``; a no-op on CPU.

    The CPU here has no AVX512-BF16/AMX, where bf16 convolutions are emulated and slower than
    fp32, so CPU training stays in fp32.
    """
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        with torch.autocast("cuda", dtype=dtype):
            yield
    else:
        yield
