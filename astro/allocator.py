"""Process start-up settings of the C allocator for training and inference processes.

glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a
fresh ``mmap`` and unmaps it on free, so each training step page-faults and zero-fills its
activations anew (a batch of 50 single-band maps: ~40 MB per layer in bf16). glibc reads its
tunables only at start-up, so entry points (the ``clustermass`` console script, ``python -m
benchmarks``) re-execute themselves once with :data:`MALLOC_TUNABLES` added to
``GLIBC_TUNABLES`` (:func:`reexec_with_tuned_malloc`): freed blocks up to 256 MiB stay in the
heap and are reused. Measured on the 2-core Zen 4 EPYC (AVX512-BF16), trainer step of the
single-band CNN at batch 50, 2026-11-30: bf16 on the full batch 344 -> 580 images/s, fp32 with
micro-batches of 10 216 -> 296; the authors' Keras was unaffected (it keeps its own buffers).
``CLUSTERMASS_MALLOC_TUNING=0`` turns the re-execution off.

Standard library only (imported before torch, by the console script's first line).
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from collections.abc import Mapping

__all__ = [
    "MALLOC_TUNABLES",
    "MALLOC_SWITCH",
    "LEGACY_CPU_MICRO_BATCH",
    "malloc_tuned_environ",
    "malloc_tuning_active",
    "reexec_with_tuned_malloc",
]

#: glibc malloc tunables for training processes (see the module doc): allocations up to 256 MiB
#: come from the heap, and up to 1 GiB of freed heap is kept instead of returned to the kernel.
MALLOC_TUNABLES: dict[str, int] = {
    "glibc.malloc.mmap_threshold": 256 * 2**20,
    "glibc.malloc.trim_threshold": 2**30,
}
#: Environment switch: ``0`` / ``false`` / ``no`` / ``off`` keeps the C library's defaults.
MALLOC_SWITCH = "CLUSTERMASS_MALLOC_TUNING"
#: CPU micro-batch of ``cpu_micro_batch: auto`` where the tuned allocator is not active, and for
#: the multimodal network (its full-batch step was not measured).
LEGACY_CPU_MICRO_BATCH = 10


def _tunables(value: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in value.split(":") if "=" in item)


def malloc_tuned_environ(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """``environ`` with :data:`MALLOC_TUNABLES` merged into ``GLIBC_TUNABLES``.

    None when there is nothing to do: not glibc on Linux, switched off by
    ``CLUSTERMASS_MALLOC_TUNING=0``, or every tunable already set (a value the user set wins).
    """
    env = dict(os.environ if environ is None else environ)
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    if env.get(MALLOC_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    have = _tunables(env.get("GLIBC_TUNABLES", ""))
    missing = {k: str(v) for k, v in MALLOC_TUNABLES.items() if k not in have}
    if not missing:
        return None
    merged = [env["GLIBC_TUNABLES"]] if env.get("GLIBC_TUNABLES") else []
    merged += [f"{k}={v}" for k, v in missing.items()]
    env["GLIBC_TUNABLES"] = ":".join(merged)
    return env


def malloc_tuning_active(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process started with a raised malloc mmap threshold (ours or the user's)."""
    env = os.environ if environ is None else environ
    if "glibc.malloc.mmap_threshold" in _tunables(env.get("GLIBC_TUNABLES", "")):
        return True
    return bool(env.get("MALLOC_MMAP_THRESHOLD_"))


def reexec_with_tuned_malloc() -> None:
    """Re-execute this process with the tuned allocator; return only when not needed.

    For entry points only (the ``clustermass`` console script, the scripts of ``benchmarks/``;
    ``python -m benchmarks`` passes the environment to each benchmark's interpreter): glibc
    reads its tunables at start-up, so the only way to apply them is a fresh image of the same
    command line (``sys.orig_argv``) with the environment extended. The child finds the
    tunables set and does not re-execute again. If the interpreter cannot be re-executed the
    process goes on with the default allocator (slower, same results) after a warning.
    """
    env = malloc_tuned_environ()
    if env is None or not sys.executable:
        return
    argv = [sys.executable, *sys.orig_argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError as exc:  # pragma: no cover - exec of the running interpreter failed
        warnings.warn(
            f"could not re-execute {sys.executable} with GLIBC_TUNABLES ({exc}); going on with "
            "glibc's default allocator (training is slower, results are the same)",
            RuntimeWarning,
            stacklevel=2,
        )
