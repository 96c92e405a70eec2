"""Fixtures of the models tests: tiny synthetic catalogues and tiny configs (1 CPU thread).

Precision ``auto`` resolves to fp32 on CPU in these tests on every machine (see
``_auto_precision_is_fp32``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from models import runtime
from models.config import RunConfig, deep_update
from models.data import ClusterArrays
from tests.models.synthetic import make_arrays


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # The test machine has 2 cores shared with other jobs: OpenMP spinning on an
    # oversubscribed core makes 2 threads several times slower than 1 for tiny convolutions.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _auto_precision_is_fp32() -> Iterator[None]:
    # Wiring tests compare predictions of different code paths (training, predict,
    # attribution, which stays fp32) to 1e-5: pin "auto" to fp32 on CPU whatever bf16 support
    # the test machine has. tests/models/test_precision.py fakes or restores the flags itself.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runtime, "cpu_flags", lambda *a, **k: frozenset())
        yield


@pytest.fixture(scope="session")
def arrays32() -> ClusterArrays:
    """96 synthetic clusters, 3 bands of 32 x 32 pixels, with galaxies and scalars."""
    return make_arrays(96, 32, seed=0)


@pytest.fixture(scope="session")
def arrays64() -> ClusterArrays:
    """48 synthetic clusters at 64 x 64 (the smallest image the multimodal CNN accepts)."""
    return make_arrays(48, 64, seed=1)


TINY_ARGS = {
    "single": {"input_size": 32},
    "multi": {"input_size": 32},
    "multimodal": {"image_size": 64, "cube_size": 16},
}


def tiny_config(kind: str = "single", **overrides: Any) -> RunConfig:
    """2 epochs, batch 16, one fold, 1 thread; 32 x 32 (64 x 64 and a 16^3 cube multimodal)."""
    base = {
        "model": {"kind": kind, "args": dict(TINY_ARGS[kind])},
        "training": {"max_epochs": 2, "patience": 5, "batch_size": 16, "num_threads": 1},
        "cv": {"folds": [0]},
        "data": {"kde": {"n_grid": 16}},
    }
    return RunConfig.from_config(**deep_update(base, overrides))


@pytest.fixture
def tiny() -> Any:
    return tiny_config
