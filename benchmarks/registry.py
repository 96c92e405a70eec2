"""The benchmarks of the project: each one's module, title and arguments at full and quick size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Benchmark", "BENCHMARKS", "TRAIN_VARIANTS", "TRAIN_BF16_VARIANTS", "is_complete"]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its module under ``benchmarks/`` and its arguments at each size."""

    key: str
    module: str
    title: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    uses_device: bool = False
    uses_database: bool = False


BENCHMARKS: dict[str, Benchmark] = {
    b.key: b
    for b in (
        Benchmark(
            "mocks",
            "bench_mocks",
            "mock generation",
            ("--n", "3300", "--seed", "1", "--baseline-n", "400"),
            ("--n", "40", "--seed", "1", "--baseline-n", "10"),
        ),
        Benchmark(
            "ingest",
            "bench_ingest",
            "ingest vs raw COPY",
            ("--n", "3300", "--seed", "1"),
            ("--n", "20", "--seed", "1"),
            uses_database=True,
        ),
        Benchmark(
            "train",
            "bench_train_step",
            "train step vs Keras",
            ("--rounds", "3", "--steps", "10", "--repeats", "3"),
            ("--rounds", "1", "--steps", "2", "--repeats", "1"),
            uses_device=True,
        ),
        Benchmark(
            "inference",
            "bench_inference",
            "inference maps/s",
            ("--n", "512", "--models", "single,multi,multimodal", "--batches", "1,10,50,256"),
            ("--n", "16", "--models", "single,multimodal", "--batches", "1,8"),
            uses_device=True,
        ),
        Benchmark(
            "sql",
            "bench_scatter_query",
            "results SQL scatter latency",
            (
                "--n-predictions",
                "1e6",
                "--small-run",
                "1e5",
                "--repeats",
                "50",
                "--big-repeats",
                "20",
            ),
            (
                "--n-predictions",
                "2e4",
                "--small-run",
                "5e3",
                "--repeats",
                "5",
                "--big-repeats",
                "3",
            ),
            uses_database=True,
        ),  # fmt: skip
    )
}
TRAIN_VARIANTS: dict[str, str] = {
    "cpu": "nchw,channels_last,channels_last+micro10,trainer",
    "cuda": "nchw,channels_last,channels_last+amp",
}
#: Train-step variants added on a CPU with native bf16 (AVX512-BF16 or AMX), so the bf16 ratios
#: are measured in the same run wherever they could pay.
TRAIN_BF16_VARIANTS: tuple[str, ...] = ("channels_last+micro10+bf16", "channels_last+bf16")


def is_complete(runs: Sequence[dict[str, Any]]) -> bool:
    """Whether every benchmark has a successful result in at least one of ``runs``."""
    done = {k for r in runs for k, v in r["results"].items() if v.get("status") == "ok"}
    return set(BENCHMARKS) <= done
