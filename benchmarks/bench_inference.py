"""Batched inference throughput (maps/s) of ``models.inference.predict``.

End to end: raw count maps (N, 3, 128, 128) -> redshift normalisation, log, standardisation ->
network -> log10 M500c, for the single-band and multiband CNNs (and the multimodal CNN with its
KDE cubes precomputed) at several batch sizes, NCHW vs channels_last. The baseline in the same
run is batch size 1 in NCHW (one map at a time, the naive service loop); ratios are against it.

Usage::

    python benchmarks/bench_inference.py [--n 512] [--threads 2] [--device cpu]
        [--models single,multi] [--batches 1,50,256] [--json out.json]
    python -m benchmarks --only inference     # the same, into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI (cli/main.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from astro.allocator import reexec_with_tuned_malloc  # noqa: E402
from models.data import ClusterArrays  # noqa: E402
from models.inference import ModelState, predict  # noqa: E402
from models.preprocessing import Preprocessing  # noqa: E402
from models.registry import build_network  # noqa: E402
from models.runtime import autocast, to_memory_format  # noqa: E402


def _arrays(n: int, with_kde: bool, cube: int) -> ClusterArrays:
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.3, (n, 3, 128, 128)).astype(np.int32)
    kde = None
    if with_kde:
        kde = rng.random((n, cube, cube, cube), dtype=np.float32)
        kde /= kde.sum(axis=(1, 2, 3), keepdims=True)
    return ClusterArrays(counts, rng.uniform(0.05, 0.5, n), kde_cubes=kde)


def _pre(bands: str, with_kde: bool) -> Preprocessing:
    return Preprocessing(
        bands=bands, z_slope=-1.5, z_intercept=3.9, reference_counts=4000.0,
        image_mean=0.3, image_std=0.4, target_min=13.5, target_max=15.0,
        kde_mean=1 / 64**3 if with_kde else None, kde_std=1e-5 if with_kde else None,
    )  # fmt: skip


def rate(kind: str, arrays: ClusterArrays, batch: int, channels_last: bool, device: str) -> float:
    """Maps/s of predict() over ``arrays`` (best of 2 after a warm-up)."""
    net = build_network({"kind": kind})
    state = ModelState.from_module({"kind": kind, "args": {}}, net)
    pre = _pre(net.bands, net.needs_kde)
    small = arrays.subset(np.arange(min(len(arrays), batch)))
    predict(state, pre, small, batch_size=batch, channels_last=channels_last, device=device)
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        out = predict(
            state, pre, arrays, batch_size=batch, channels_last=channels_last, device=device
        )
        best = max(best, len(out) / (time.perf_counter() - t0))
    return best


def resident_rate(kind: str, batch: int, device: str, precision: str, repeats: int = 20) -> float:
    """Maps/s of the network alone on inputs already on ``device`` (the in-memory rate).

    channels_last, ``torch.inference_mode``, autocast to ``precision`` ("fp32" or "bf16"); the
    clock stops after ``torch.cuda.synchronize`` (CUDA kernels are asynchronous). Best of 3
    timings of ``repeats`` forward passes each, after 3 warm-up passes.
    """
    dev = torch.device(device)
    net = to_memory_format(build_network({"kind": kind}).to(dev).eval(), True)
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn((batch, 3 if kind != "single" else 1, 128, 128), generator=gen, device=dev)
    x = to_memory_format(x, True)
    kde = None
    if getattr(net, "needs_kde", False):
        kde = torch.rand((batch, 1, 64, 64, 64), generator=gen, device=dev)
        kde = to_memory_format(kde, True)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    best = 0.0
    with torch.inference_mode(), autocast(dev, precision):  # type: ignore[arg-type]
        for _ in range(3):
            net(x, kde)
        sync()
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(repeats):
                net(x, kde)
            sync()
            best = max(best, batch * repeats / (time.perf_counter() - t0))
    return best


def measure(
    n: int = 512,
    threads: int | None = None,
    device: str = "cpu",
    models: list[str] | None = None,
    batches: list[int] | None = None,
) -> dict:
    """Maps/s of every model x batch size x memory format; ratios against batch 1 NCHW.

    The multimodal network (KDE cubes precomputed) is timed on at most 64 maps; the batch-1
    baseline of every model on at most 64 maps.
    """
    threads = threads or os.cpu_count() or 1
    models = models or ["single", "multi"]
    batches = batches or [1, 50, 256]
    torch.set_num_threads(threads)
    results = []
    for kind in models:
        with_kde = kind == "multimodal"
        n_kind = min(n, 64 if device == "cpu" else 1024) if with_kde else n
        arrays = _arrays(n_kind, with_kde, 64)
        n_base = min(n_kind, 64)
        base = rate(kind, arrays.subset(np.arange(n_base)), 1, False, device)
        results.append(
            {"model": kind, "batch": 1, "channels_last": False, "maps_per_s": base, "ratio": 1.0,
             "n_maps": n_base}
        )  # fmt: skip
        print(f"{kind:10s} batch   1 NCHW           {base:8.1f} maps/s (baseline)", flush=True)
        for batch in batches:
            for cl in (False, True):
                if batch == 1 and not cl:
                    continue
                r = rate(kind, arrays, batch, cl, device)
                results.append(
                    {
                        "model": kind,
                        "batch": batch,
                        "channels_last": cl,
                        "maps_per_s": r,
                        "ratio": r / base,
                        "n_maps": n_kind,
                    }
                )
                fmt = "channels_last" if cl else "NCHW"
                print(
                    f"{kind:10s} batch {batch:3d} {fmt:14s} {r:8.1f} maps/s  x{r / base:.2f}",
                    flush=True,
                )
    resident = []
    if device == "cuda":
        for kind in models:
            for batch in batches:
                if kind == "multimodal" and batch > 1024:
                    continue  # 1024 x 64^3 cubes already fill the card's caches many times
                for prec in ("fp32", "bf16"):
                    r = resident_rate(kind, batch, device, prec)
                    resident.append(
                        {"model": kind, "batch": batch, "precision": prec, "maps_per_s": r}
                    )
                    print(
                        f"{kind:10s} batch {batch:4d} {prec} on the device: {r:10.0f} maps/s",
                        flush=True,
                    )
    return {
        "resident": resident,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "params": {
            "n": n,
            "threads": threads,
            "device": device,
            "models": models,
            "batches": batches,
        },  # fmt: skip
        "threads": threads,
        "device": device,
        "torch": torch.__version__,
        "load_avg_end": list(os.getloadavg()),
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure, optionally save the result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--models", default="single,multi")
    ap.add_argument("--batches", default="1,50,256")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    meta = measure(
        args.n,
        args.threads,
        args.device,
        [m.strip() for m in args.models.split(",") if m.strip()],
        [int(b) for b in args.batches.split(",") if b.strip()],
    )
    if args.json:
        args.json.write_text(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    reexec_with_tuned_malloc()  # the clustermass CLI's allocator (astro.allocator)
    raise SystemExit(main())
