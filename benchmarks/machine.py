"""Describe the machine a benchmark ran on: CPU, cores, RAM, load, database server, versions.

Nothing here imports torch or numpy (versions come from the installed distributions), except
:func:`gpu_description`, which needs torch to name the CUDA device.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks._db import server_description

__all__ = [
    "cpu_model",
    "cpu_flags",
    "ram_gib",
    "load_average",
    "describe",
    "finish",
    "gpu_description",
]

ROOT = Path(__file__).resolve().parents[1]
# CPU features that decide which kernels oneDNN can use (bf16 needs AVX512-BF16 or AMX).
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """The subset of :data:`FLAGS_OF_INTEREST` the CPU reports."""
    for line in _cpuinfo():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return [f for f in FLAGS_OF_INTEREST if f in have]
    return []


def ram_gib() -> float | None:
    """Total memory [GiB] from ``/proc/meminfo`` (None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def gpu_description() -> dict[str, Any] | None:
    """Name, memory and driver of CUDA device 0, or None without one (imports torch)."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
        "count": torch.cuda.device_count(),
    }


def describe(admin_url: str | None = None, *, device: str = "cpu") -> dict[str, Any]:
    """Everything the report says about the machine at the start of a run.

    Parameters
    ----------
    admin_url : str, optional
        A database on the PostgreSQL server the database benchmarks use (its version and
        settings are recorded); None skips the server.
    device : {"cpu", "cuda"}
        With ``"cuda"`` the GPU is described (needs torch and a CUDA device).
    """

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = os.cpu_count()
    return {
        "date_start": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": ram_gib(),
        "load_avg_start": load_average(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name) for name in ("torch", "numpy", "sqlalchemy", "psycopg2-binary")
        },
        "postgresql": server_description(admin_url) if admin_url else None,
        "gpu": gpu_description() if device == "cuda" else None,
        "git_commit": _git_commit(),
    }


def finish(machine: dict[str, Any]) -> dict[str, Any]:
    """Add the end-of-run date and load average to a :func:`describe` dict (returns a copy)."""
    return {
        **machine,
        "date_end": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_avg_end": load_average(),
    }
