"""Train-step samples/s of the multimodal CNN: factorised first Conv3d vs the plain one.

``MultiModalCNN.forward`` computes its first layer as a Conv3d of the KDE channel plus a
broadcast Conv2d of the pooled image (``features3d(factorised=True)``); the "before" variant
runs the plain ``Conv3d(4, 24, 5)`` over the tiled 4-channel cube (``factorised=False``), the
network's forward before the change. Both use the same weights and the trainer's own
``models.training.train_step`` (forward + backward + Adam step, batch 100 as in the configs,
channels-last, CPU micro-batches of 10 as the trainer default). Rounds alternate the two
variants, so machine load hits both alike; the ratio is taken per round and its median
reported.

``--single compile`` / ``--single bf16`` instead time the single-band CNN's trainer step
(batch 50, channels-last, micro-batches of 10) eager fp32 vs ``torch.compile`` / vs bf16
autocast, in alternating rounds (with the time of the first call: compilation).

Usage::

    python benchmarks/bench_multimodal_step.py [--configs paper,reduced] [--rounds 3]
        [--steps 2] [--threads 2] [--json out.json]
    python benchmarks/bench_multimodal_step.py --single compile [--rounds 3] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# As the CLI does (services/cli.py): OpenMP threads sleep at barriers instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from astro.allocator import reexec_with_tuned_malloc  # noqa: E402
from models.networks import MultiModalCNN, SingleBandCNN  # noqa: E402
from models.runtime import to_memory_format  # noqa: E402
from models.training import loss_function, parameter_groups, train_step  # noqa: E402

#: (image_size, cube_size) of configs/multimodal.yaml and configs/multimodal_cpu.yaml.
CONFIGS = {"paper": (128, 64), "reduced": (128, 32)}


class _Naive(nn.Module):
    """The network's forward with the plain Conv3d over the merged 4-channel cube."""

    def __init__(self, net: MultiModalCNN) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, kde: torch.Tensor | None = None) -> torch.Tensor:
        n = self.net
        a = n.dense3d(torch.flatten(n.features3d(image, kde, factorised=False), 1))
        b = n.dense2d(torch.flatten(n.branch2d(image), 1))
        return n.out(n.merge(torch.cat([a, b], dim=1)))


def _timed(step, steps: int, samples_per_step: int) -> float:
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    return samples_per_step * steps / (time.perf_counter() - t0)


def multimodal(config: str, rounds: int, steps: int, batch: int = 100) -> dict:
    """Samples/s of ``naive`` and ``factorised`` per round (1 warm-up step each, then ``steps``)."""
    image_size, cube_size = CONFIGS[config]
    torch.manual_seed(0)
    net = to_memory_format(MultiModalCNN(image_size=image_size, cube_size=cube_size), True)
    variants = {"naive": _Naive(net), "factorised": net}
    opt = torch.optim.Adam(parameter_groups(net, 1e-4), lr=1e-3)
    loss = loss_function("mse")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, image_size, image_size, generator=g)
    k = torch.randn(batch, 1, cube_size, cube_size, cube_size, generator=g)
    y = torch.rand(batch, generator=g) * 2 - 1
    dev = torch.device("cpu")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for name, model in variants.items():
            model.train()

            def step(_: int, model: nn.Module = model) -> None:
                train_step(
                    model, opt, loss, x, k, y, device=dev, channels_last=True, micro_batch=10
                )

            step(0)  # warm-up
            rates[name].append(_timed(step, steps, batch))
        print(
            f"{config} round {r + 1}: "
            + "  ".join(f"{n} {v[-1]:.2f}" for n, v in rates.items())
            + " samples/s",
            flush=True,
        )
    ratios = [f / n for f, n in zip(rates["factorised"], rates["naive"], strict=True)]
    return {
        "image_size": image_size,
        "cube_size": cube_size,
        "batch": batch,
        "samples_per_s": rates,
        "median_samples_per_s": {n: statistics.median(v) for n, v in rates.items()},
        "ratio_per_round": ratios,
        "median_ratio": statistics.median(ratios),
    }


def single_band(rounds: int, steps: int, mode: str, batch: int = 50) -> dict:
    """Single-band trainer step, eager fp32 vs ``mode``, alternating rounds.

    ``mode="compile"``: ``torch.compile`` of the network (the first call, which compiles the
    forward and backward graphs, is timed separately); ``mode="bf16"``: bf16 autocast
    (``precision="bf16"``; emulated on CPUs without AVX512-BF16/AMX).
    """
    torch.manual_seed(0)
    net = to_memory_format(SingleBandCNN(), True)
    opt = torch.optim.Adam(parameter_groups(net, 1e-4), lr=1e-3)
    loss = loss_function("mse")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 128, 128, generator=g)
    y = torch.rand(batch, generator=g) * 2 - 1
    dev = torch.device("cpu")
    other = torch.compile(net) if mode == "compile" else net
    variants = {"eager": (net, "fp32"), mode: (other, "bf16" if mode == "bf16" else "fp32")}

    def make_step(model: nn.Module, precision: str):
        def step(_: int) -> None:
            train_step(
                model, opt, loss, x, None, y, device=dev, channels_last=True, micro_batch=10,
                precision=precision,
            )  # fmt: skip

        return step

    t0 = time.perf_counter()
    make_step(*variants[mode])(0)  # compiles when mode == "compile"
    first_call_s = time.perf_counter() - t0
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for name, (model, precision) in variants.items():
            step = make_step(model, precision)
            step(0)
            rates[name].append(_timed(step, steps, batch))
        print(
            f"{mode} round {r + 1}: "
            + "  ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items())
            + " images/s",
            flush=True,
        )
    ratios = [c / e for c, e in zip(rates[mode], rates["eager"], strict=True)]
    return {
        "batch": batch,
        "first_call_s": first_call_s,
        "images_per_s": rates,
        "median_images_per_s": {n: statistics.median(v) for n, v in rates.items()},
        "ratio_per_round": ratios,
        "median_ratio": statistics.median(ratios),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure, print and optionally save the result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="paper,reduced")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--single", choices=["compile", "bf16"], default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result: dict = {
        "threads": args.threads,
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_avg_start": list(os.getloadavg()),
    }
    if args.single:
        result[args.single] = single_band(args.rounds, args.steps, args.single)
    else:
        for c in args.configs.split(","):
            if c not in CONFIGS:
                ap.error(f"unknown config {c!r}; choose from {sorted(CONFIGS)}")
            result[c] = multimodal(c, args.rounds, args.steps)
    result["load_avg_end"] = list(os.getloadavg())
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    reexec_with_tuned_malloc()  # the clustermass CLI's allocator (astro.allocator)
    raise SystemExit(main())
