"""Throughput of the mock generator: clusters per second per core for the full product.

The full product per cluster is 3 bands x 128^2 for each of TOTAL, AGN and ICM plus the galaxy
catalogue and all truth columns. Single-threaded (BLAS/OpenMP pinned to one thread before numpy
loads), so the number is per core.

Baseline, measured in the same run on the same clusters: the straightforward pixel renderer
(evaluate every emission component at all pixel centres, FFT-convolve ICM and AGN with the PSF
kernel, then draw independent Poisson numbers per pixel for ICM, AGN and background). The
generator instead draws Poisson totals and samples photon positions by inverse CDF, then bins them.

Usage::

    python benchmarks/bench_mocks.py --n 3300 --seed 1 [--baseline-n 400] [--json out.json]
    python -m benchmarks --only mocks     # the same, into docs/benchmarks.md
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages first
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mocks import MockConfig, generate, read_catalogue  # noqa: E402
from mocks.config import HALF_WIDTH_MPC_H, NPIX, PIXEL_MPC_H  # noqa: E402


def _pixel_baseline(cat, rows: np.ndarray, rng: np.random.Generator) -> float:  # noqa: ANN001
    """Time the naive renderer for ``rows`` of ``cat``; returns seconds."""
    t = cat.truth
    c = (np.arange(NPIX) + 0.5) * PIXEL_MPC_H - HALF_WIDTH_MPC_H
    xx, yy = np.meshgrid(c, c)
    start = time.perf_counter()
    for i in rows:
        rc = float(t["rc_ambient"][i].value)
        beta = float(t["beta_ambient"][i])
        q = float(t["axis_ratio"][i])
        th = float(t["position_angle"][i].value)
        ox, oy = float(t["offset_x"][i].value), float(t["offset_y"][i].value)
        # ICM model at pixel centres (ambient + a compact core), 3 bands
        xr = (xx - ox) * np.cos(th) + (yy - oy) * np.sin(th)
        yr = -(xx - ox) * np.sin(th) + (yy - oy) * np.cos(th)
        shape = (1 + (q * xr**2 + yr**2 / q) / rc**2) ** (0.5 - 3 * beta)
        core = (1 + (xr**2 + yr**2) / (0.2 * rc) ** 2) ** (0.5 - 3 * 0.7)
        n_icm = float(cat.counts_icm[i].sum())
        bands = np.array([0.6, 0.3, 0.1])
        icm = (shape / shape.sum() + core / core.sum())[None] * (n_icm / 2 * bands)[:, None, None]
        # AGN: delta functions at random pixels with the observed AGN counts
        agn = np.zeros((3, NPIX, NPIX))
        n_src = int(t["n_agn_field"][i]) + int(t["n_agn_cluster"][i])
        np.add.at(
            agn, (slice(None), rng.integers(0, NPIX, n_src), rng.integers(0, NPIX, n_src)), 1.0
        )
        agn *= cat.counts_agn[i].sum() / max(agn.sum(), 1.0)
        # PSF: King kernel at this pixel scale, FFT convolution of both maps
        pix = float(t["pixscale_arcsec"][i].value)
        rc_pix = 26.0 / 2 / np.sqrt(3) / pix
        r2 = np.add.outer(np.fft.fftfreq(NPIX, 1 / NPIX) ** 2, np.fft.fftfreq(NPIX, 1 / NPIX) ** 2)
        kern = (1 + r2 / rc_pix**2) ** -1.5
        kf = np.fft.rfft2(kern / kern.sum())
        icm = np.fft.irfft2(np.fft.rfft2(icm) * kf, s=(NPIX, NPIX))
        agn = np.fft.irfft2(np.fft.rfft2(agn) * kf, s=(NPIX, NPIX))
        bkg = np.broadcast_to(np.asarray(t["bkg_per_pixel"][i])[:, None, None], (3, NPIX, NPIX))
        ci = rng.poisson(np.clip(icm, 0, None)).astype(np.int32)
        ca = rng.poisson(np.clip(agn, 0, None)).astype(np.int32)
        cb = rng.poisson(bkg).astype(np.int32)
        _ = ci + ca + cb
    return time.perf_counter() - start


def measure(n: int = 3300, seed: int = 1, baseline_n: int = 400) -> dict:
    """Generate ``n`` clusters, render ``baseline_n`` of them naively, write and read them back.

    Returns
    -------
    dict
        Seconds and rates of each step; ``speedup_vs_baseline`` is the generator's clusters/s over
        the naive renderer's, both measured here on one thread.
    """
    cfg = MockConfig(n_clusters=n, seed=seed)
    generate(MockConfig(n_clusters=20, seed=99))  # warm caches (colossus tables, ARF)
    t0 = time.perf_counter()
    cat = generate(cfg)
    t_gen = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    rows = rng.choice(len(cat), size=min(baseline_n, len(cat)), replace=False)
    t_base = _pixel_baseline(cat, rows, rng)
    rate_base = len(rows) / t_base

    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        cat.write(tmp)
        t_write = time.perf_counter() - t1
        t2 = time.perf_counter()
        read_catalogue(tmp)
        t_read = time.perf_counter() - t2

    rate = len(cat) / t_gen
    return {
        "params": {"n": n, "seed": seed, "baseline_n": baseline_n},
        "threads": 1,
        "n_clusters": len(cat),
        "generate_s": t_gen,
        "clusters_per_s_per_core": rate,
        "baseline_n": len(rows),
        "baseline_s": t_base,
        "baseline_clusters_per_s": rate_base,
        "speedup_vs_baseline": rate / rate_base,
        "write_s": t_write,
        "write_files_per_s": len(cat) / t_write,
        "read_s": t_read,
        "read_files_per_s": len(cat) / t_read,
        "mean_photons_per_cluster": float(cat.counts_total.sum()) / len(cat),
        "cpu": platform.processor() or platform.machine(),
        "load_avg_end": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline-n", type=int, default=400, help="clusters for the baseline")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args(argv)
    res = measure(args.n, args.seed, args.baseline_n)
    width = max(map(len, res))
    for key, val in res.items():
        shown = f"{val:.2f}" if isinstance(val, float) else val
        print(f"{key:<{width}}  {shown}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
