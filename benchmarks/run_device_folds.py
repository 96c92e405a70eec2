"""Train the benchmark's networks fold by fold on a GPU host, within a deadline, resumably.

A lent GPU machine has no PostgreSQL and none of the service stack; it needs only ``models/``
(torch, numpy, scipy, pydantic). This script trains the runs of ``docs/benchmark.md`` there from
catalogues carried as ``.npz`` files (:meth:`models.data.ClusterArrays.save_npz`), several runs at
once (one process each, sharing the GPU: the paper's small CNNs at batch 50 leave most of an
H100-class card idle, so concurrent runs cost little), and stops at a deadline. Every finished
fold is on disk (:func:`models.runio.write_fold`); a later call, here or on a CPU, resumes the
run from there: ``run_training(..., resume=True)`` or ``run_full_benchmark.py --resume``, whose
run directories have the same names because the device is not part of a run's key.

Usage::

    python benchmarks/run_device_folds.py --arrays paper=PAPER.npz --arrays erass=ERASS.npz \\
        --jobs "paper:multimodal@0,1,2,3;paper:multimodal@4,5,6,7;paper:single;erass:single" \\
        --out OUT --deadline 420 [--parallel 5] [--device cuda] [--max-epochs N]

Output: ``OUT/<preset>/<run name>-<key12>/`` as :func:`models.pipeline.run_training` writes it
(the run record only for runs whose every fold finished), ``OUT/<preset>/<job>.log``, and
``OUT/summary.json`` (per job: folds done, seconds, the run's metrics when complete).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astro.allocator import reexec_with_tuned_malloc  # noqa: E402
from models.config import RunConfig  # noqa: E402
from models.crossval import cross_validate  # noqa: E402
from models.data import ClusterArrays, RaggedGalaxies  # noqa: E402
from models.kde import kde_cubes  # noqa: E402
from models.pipeline import run_training, split_estimator  # noqa: E402
from models.runio import read_fold_result, run_dir_name, write_fold  # noqa: E402

CONFIGS = {"single": "single.yaml", "multi": "multi.yaml", "multimodal": "multimodal.yaml"}


def job_config(estimator: str, ensemble: int = 3, max_epochs: int | None = None) -> RunConfig:
    """The RunConfig of one estimator, exactly as ``run_full_benchmark.py`` builds it.

    ``single_gaussian`` is the Gaussian-head single-band network (``configs/single_gaussian.yaml``).
    """
    over: dict = {"training": {"device": "auto"}}
    if max_epochs:
        over["training"]["max_epochs"] = max_epochs
    if estimator == "single_gaussian":
        return RunConfig.from_config(ROOT / "configs" / "single_gaussian.yaml", **over)
    kind, is_ensemble = split_estimator(estimator)
    extra = {"ensemble": ensemble} if is_ensemble else {}
    return RunConfig.from_config(ROOT / "configs" / CONFIGS[kind], **over, **extra)


def worker(args: argparse.Namespace) -> int:
    """Train one run (resuming its finished folds) and write it under ``--out``."""
    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    cfg = job_config(args.estimator, args.ensemble, args.max_epochs)
    arrays = ClusterArrays.load_npz(args.arrays_file)
    t0 = time.perf_counter()

    if args.folds:
        # Some folds of the run, written into the full run's directory (its name is the full
        # config's key): the run record is assembled later by run_training(resume=True).

        run_dir = args.out / run_dir_name(cfg)
        run_dir.mkdir(parents=True, exist_ok=True)
        wanted = [int(f) for f in args.folds.split(",")]
        sub = cfg.model_copy(update={"cv": cfg.cv.model_copy(update={"folds": wanted})})
        cross_validate(
            arrays,
            sub,
            on_fold=lambda r: write_fold(run_dir, r),
            device=args.device,
            done=lambda f, m: read_fold_result(run_dir, f, m),
        )
        print(json.dumps({"done": True, "folds": wanted, "seconds": time.perf_counter() - t0}))
        return 0
    _, _, metrics = run_training(
        arrays, cfg, args.out, device=args.device, n_boot=args.n_boot, resume=True
    )
    print(
        json.dumps({"done": True, "seconds": time.perf_counter() - t0,
                    "sigma_lnM": metrics.get("sigma_lnM"), "n": metrics.get("n_clusters")}),
        flush=True,
    )  # fmt: skip
    return 0


def _plain(v: object) -> bool:
    return isinstance(v, int | float | str | bool) or v is None


def _kde_chunk(args: tuple[list[int], RaggedGalaxies, dict]) -> tuple[list[int], np.ndarray]:
    index, galaxies, params = args
    return index, kde_cubes(galaxies, **params)


def precompute_kde(src: Path, dst: Path, workers: int) -> Path:
    """``src`` with the multimodal config's KDE cubes filled in, computed on ``workers`` cores.

    The cubes are a CPU job (numpy, one core per call); a GPU host has many cores and the
    training processes would otherwise each spend minutes on them.
    """
    from concurrent.futures import ProcessPoolExecutor

    cfg = job_config("multimodal").data.kde
    params = {"n_grid": cfg.n_grid, "half_width_mpc_h": cfg.half_width_mpc_h,
              "half_width_km_s": cfg.half_width_km_s, "bw_method": cfg.bw_method}  # fmt: skip
    arrays = ClusterArrays.load_npz(src)
    chunks = np.array_split(np.arange(len(arrays)), workers * 4)
    cubes = np.empty((len(arrays),) + (cfg.n_grid,) * 3, dtype=np.float32)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        jobs = [(c.tolist(), arrays.galaxies.subset(c), params) for c in chunks if c.size]
        for index, part in pool.map(_kde_chunk, jobs):
            cubes[index] = part
    arrays.kde_cubes = cubes
    arrays.save_npz(dst, compress=False)
    print(f"KDE cubes of {src}: {len(arrays)} in {time.perf_counter() - t0:.1f} s", flush=True)
    return dst


def folds_done(run_dir: Path) -> list[str]:
    """Names of the complete fold folders of a run (``split.npz`` is written last)."""
    return sorted(p.parent.name for p in run_dir.glob("fold_*_m*/split.npz"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arrays", action="append", default=[], help="PRESET=FILE.npz")
    ap.add_argument("--jobs", default="", help="PRESET:ESTIMATOR[@FOLD,...];... in priority order")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--deadline", type=float, default=420.0, help="seconds for all jobs")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads per job")
    ap.add_argument("--ensemble", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument(
        "--kde-workers", type=int, default=0, help="precompute KDE cubes first on N cores"
    )
    ap.add_argument("--kde-only", action="store_true", help="only precompute the KDE cubes")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--estimator", help=argparse.SUPPRESS)
    ap.add_argument("--folds", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--arrays-file", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    files = dict(a.split("=", 1) for a in args.arrays)
    jobs = [tuple(j.split(":", 1)) for j in args.jobs.split(";") if j]
    for preset, _ in jobs:
        if preset not in files:
            ap.error(f"job preset {preset!r} has no --arrays {preset}=FILE")
    if args.kde_workers:
        args.out.mkdir(parents=True, exist_ok=True)
        for preset in sorted({p for p, e in jobs if e.startswith("multimodal")}):
            dst = args.out / f"{preset}_kde.npz"
            if not dst.exists():
                precompute_kde(Path(files[preset]), dst, args.kde_workers)
            files[preset + "/kde"] = str(dst)
    if args.kde_only:
        return 0
    start = time.monotonic()
    pending = list(jobs)
    running: dict[tuple[str, str], tuple[subprocess.Popen, float]] = {}
    summary: dict[str, dict] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    while pending or running:
        left = args.deadline - (time.monotonic() - start)
        while pending and len(running) < args.parallel and left > 30:
            preset, est = pending.pop(0)
            est, _, folds = est.partition("@")
            out = args.out / preset
            out.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, __file__, "--worker", "--estimator", est,
                   "--arrays-file", files.get(preset + "/kde", files[preset])
                   if est.startswith("multimodal") else files[preset], "--out", str(out), "--device", args.device,
                   "--threads", str(args.threads), "--ensemble", str(args.ensemble),
                   "--n-boot", str(args.n_boot)]  # fmt: skip
            if args.max_epochs:
                cmd += ["--max-epochs", str(args.max_epochs)]
            if folds:
                cmd += ["--folds", folds]
            log = (out / f"{est}{'@' + folds.replace(',', '-') if folds else ''}.log").open("w")
            running[(preset, est + ("@" + folds if folds else ""))] = (
                subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                time.monotonic(),
            )
            print(f"[{time.monotonic() - start:6.0f}s] start {preset}:{est}", flush=True)
        for key, (proc, t0) in list(running.items()):
            rc = proc.poll()
            if rc is None and left > 0:
                continue
            if rc is None:
                proc.kill()
                proc.wait()
                rc = "killed at the deadline"
            preset, est = key
            est = est.partition("@")[0]
            run_dir = (
                args.out / preset / run_dir_name(job_config(est, args.ensemble, args.max_epochs))
            )
            metrics = run_dir / "metrics.json"
            summary[f"{preset}:{key[1]}"] = {
                "returncode": rc,
                "seconds": round(time.monotonic() - t0, 1),
                "run_dir": str(run_dir.relative_to(args.out)),
                "folds_done": folds_done(run_dir),
                "complete": metrics.is_file(),
                "sigma_lnM": json.loads(metrics.read_text()).get("sigma_lnM")
                if metrics.is_file()
                else None,
            }
            print(f"[{time.monotonic() - start:6.0f}s] end {preset}:{est}: "
                  f"{json.dumps(summary[f'{preset}:{key[1]}'])}", flush=True)  # fmt: skip
            del running[key]
        if left <= 30 and pending:
            for preset, est in pending:
                summary[f"{preset}:{est}"] = {"returncode": "not started (deadline)"}
            pending = []
        time.sleep(1.0)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    reexec_with_tuned_malloc()  # the clustermass CLI's allocator (astro.allocator)
    raise SystemExit(main())
