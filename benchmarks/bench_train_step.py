"""Train-step throughput of the single-band CNN: our PyTorch trainer vs the authors' Keras.

Same architecture (363,629 parameters), batch 50 of 128x128x1 inputs, Adam 1e-3, MSE, L2 1e-4
on kernels. The torch side calls ``models.training.train_step`` (the trainer's own step) on
``models.networks.SingleBandCNN``; the Keras side (``_keras_train_step.py``) runs
``model.fit`` in a separate interpreter (tensorflow-cpu lives in its own venv, never in the
project venv). Rounds alternate Keras and torch so machine load hits both alike; the ratio is
torch / Keras images per second of the median over rounds of each side's best repeat.

Usage::

    python benchmarks/bench_train_step.py [--rounds 3] [--steps 10] [--repeats 3]
        [--threads 2] [--variants nchw,channels_last,channels_last+micro10]
        [--keras-python /work/venv-keras/bin/python] [--json out.json]

Set up the Keras venv once:
``python3 -m venv /work/venv-keras && /work/venv-keras/bin/pip install tensorflow-cpu numpy``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# As the CLI does (services/cli.py): OpenMP threads sleep at barriers instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from models.networks import SingleBandCNN  # noqa: E402
from models.runtime import to_memory_format  # noqa: E402
from models.training import loss_function, parameter_groups, train_step  # noqa: E402

VARIANTS: dict[str, dict] = {
    "nchw": {"channels_last": False},
    "channels_last": {"channels_last": True},
    "channels_last+micro10": {"channels_last": True, "micro_batch": 10},  # trainer default
    "channels_last+micro25": {"channels_last": True, "micro_batch": 25},
    "nchw+micro10": {"channels_last": False, "micro_batch": 10},
    "channels_last+compile": {"channels_last": True, "compile": True},
}


def torch_rate(variant: dict, steps: int, repeats: int) -> list[float]:
    """Images/s of ``repeats`` timings of ``steps`` trainer steps (after 3 warm-up steps)."""
    torch.manual_seed(0)
    cl = variant.get("channels_last", True)
    model = to_memory_format(SingleBandCNN(), cl)
    opt = torch.optim.Adam(parameter_groups(model, 1e-4), lr=1e-3)
    fwd = torch.compile(model) if variant.get("compile") else model
    loss = loss_function("mse")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * 50, 1, 128, 128, generator=g)
    y = torch.rand(steps * 50, generator=g) * 2 - 1
    dev = torch.device("cpu")

    def step(i: int) -> None:
        sl = slice(50 * i, 50 * (i + 1))
        train_step(
            fwd, opt, loss, x[sl], None, y[sl],
            device=dev, channels_last=cl, micro_batch=variant.get("micro_batch"),
        )  # fmt: skip

    for i in range(3):
        step(i % steps)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        rates.append(50 * steps / (time.perf_counter() - t0))
    return rates


def keras_rate(python: str, steps: int, repeats: int, threads: int) -> dict:
    """Run the Keras reference in its interpreter; parse its JSON line."""
    script = Path(__file__).with_name("_keras_train_step.py")
    out = subprocess.run(
        [python, str(script), str(steps), str(repeats), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--variants", default="nchw,channels_last,channels_last+micro10")
    ap.add_argument("--keras-python", default="/work/venv-keras/bin/python")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    have_keras = Path(args.keras_python).exists()
    best: dict[str, list[float]] = {n: [] for n in names}
    best["keras"] = []
    meta: dict = {}
    for r in range(args.rounds):
        if have_keras:
            k = keras_rate(args.keras_python, args.steps, args.repeats, args.threads)
            best["keras"].append(max(k["img_per_s"]))
            meta = {key: k[key] for key in ("params", "tf", "keras", "onednn")}
        for n in names:
            best[n].append(max(torch_rate(VARIANTS[n], args.steps, args.repeats)))
        line = "  ".join(f"{n} {v[-1]:.1f}" for n, v in best.items() if v)
        print(f"round {r + 1}: {line} img/s", flush=True)
    med = {n: statistics.median(v) for n, v in best.items() if v}
    result = {
        "threads": args.threads,
        "torch": torch.__version__,
        "batch": 50,
        "median_best_img_per_s": med,
        "per_round_best": best,
        "keras_meta": meta,
        "cpu": _cpu_name(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_avg_end": os.getloadavg(),
    }
    if have_keras and med.get("keras"):
        result["ratio_vs_keras"] = {n: med[n] / med["keras"] for n in names}
        top = max(names, key=lambda n: med[n])
        print(f"best torch variant {top}: {med[top]:.1f} img/s; Keras {med['keras']:.1f} img/s; "
              f"ratio {med[top] / med['keras']:.2f}")  # fmt: skip
    else:
        print(f"Keras interpreter {args.keras_python} not found: torch numbers only")
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
