"""The allocator set-up of entry points (astro.allocator) and what it changes in training."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from astro.allocator import (
    LEGACY_CPU_MICRO_BATCH,
    MALLOC_TUNABLES,
    malloc_tuned_environ,
    malloc_tuning_active,
)
from models.config import RunConfig, paper_config
from models.runtime import cpu_inference_batch, resolve_cpu_micro_batch

pytestmark = pytest.mark.skipif(
    malloc_tuned_environ({}) is None, reason="glibc tunables need glibc on Linux"
)
OURS = ":".join(f"{k}={v}" for k, v in MALLOC_TUNABLES.items())


def test_tunables_are_added_merged_and_never_override_the_user() -> None:
    assert malloc_tuned_environ({"PATH": "/bin"}) == {"PATH": "/bin", "GLIBC_TUNABLES": OURS}
    merged = malloc_tuned_environ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"})
    assert merged is not None
    assert merged["GLIBC_TUNABLES"] == f"glibc.cpu.hwcaps=-AVX2:{OURS}"
    # a threshold the user chose wins; only the missing tunable is added
    mine = malloc_tuned_environ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"})
    assert mine is not None
    assert mine["GLIBC_TUNABLES"] == (
        "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=1073741824"
    )
    assert malloc_tuned_environ({"GLIBC_TUNABLES": OURS}) is None  # already done: no loop
    for off in ("0", "false", "OFF", "no"):
        assert malloc_tuned_environ({"CLUSTERMASS_MALLOC_TUNING": off}) is None
    assert malloc_tuning_active({"GLIBC_TUNABLES": OURS})
    assert malloc_tuning_active({"MALLOC_MMAP_THRESHOLD_": "1048576"})
    assert not malloc_tuning_active({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"})


def _child(env: dict[str, str]) -> str:
    code = (
        "import os; from astro.allocator import reexec_with_tuned_malloc as r; r(); "
        "print(os.environ.get('GLIBC_TUNABLES'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )  # fmt: skip
    return out.stdout.strip()


def test_entry_points_reexecute_once_with_the_tunables() -> None:
    """The same command line runs again with the tunables set (glibc reads them at start-up)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES",)}
    env.pop("CLUSTERMASS_MALLOC_TUNING", None)
    assert _child(env) == OURS
    assert _child({**env, "CLUSTERMASS_MALLOC_TUNING": "0"}) == "None"


def test_auto_micro_batch_is_the_full_batch_only_with_the_tuned_allocator() -> None:
    assert resolve_cpu_micro_batch("auto", tuned=True) is None
    assert resolve_cpu_micro_batch("auto", tuned=False) == LEGACY_CPU_MICRO_BATCH
    assert resolve_cpu_micro_batch("auto", tuned=True, volumetric=True) == 10
    assert resolve_cpu_micro_batch(5, tuned=True) == 5
    assert resolve_cpu_micro_batch(None, tuned=False) is None
    assert cpu_inference_batch(tuned=True) == 128 and cpu_inference_batch(tuned=False) == 50
    assert cpu_inference_batch(volumetric=True, tuned=True) == 10


def test_auto_micro_batch_keeps_the_run_key_of_chunks_of_ten() -> None:
    """Micro-batching sums the same gradients, so ``auto`` (the new default) hashes as the old
    default 10: runs trained before keep their keys and are resumed, not retrained."""
    base = RunConfig.model_validate(paper_config("single"))
    assert base.training.cpu_micro_batch == "auto"
    data = base.model_dump(mode="json")
    data["training"]["cpu_micro_batch"] = 10
    assert RunConfig.model_validate(data).key() == base.key()
    data["training"]["cpu_micro_batch"] = 25
    assert RunConfig.model_validate(data).key() != base.key()
    data["training"]["cpu_micro_batch"] = 0
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        RunConfig.model_validate(data)
