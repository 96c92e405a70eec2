"""Train-step throughput of the single-band CNN: our PyTorch trainer vs the authors' Keras.

Same architecture (363,629 parameters), batch 50 of 128x128x1 inputs, Adam 1e-3, MSE, L2 1e-4
on kernels. The torch side calls ``models.training.train_step`` (the trainer's own step) on
``models.networks.SingleBandCNN``; the Keras side (``_keras_train_step.py``) runs
``model.fit`` in a separate interpreter (tensorflow-cpu lives in its own venv, never in the
project venv). Rounds alternate Keras and torch so machine load hits both alike; the ratio is
torch / Keras images per second of the median over rounds of each side's best repeat.

Usage::

    python benchmarks/bench_train_step.py [--rounds 3] [--steps 10] [--repeats 3]
        [--threads 2] [--variants nchw,channels_last,channels_last+micro10,...] [--device cpu]
        [--keras-python /work/venv-keras/bin/python] [--json out.json]
    python -m benchmarks --only train     # the same, into docs/benchmarks.md

Without the Keras interpreter the Keras row is reported as not measured (torch numbers only).
On ``--device cuda`` the torch side runs on the GPU (variant ``channels_last+amp`` adds bf16/fp16
autocast); the Keras reference stays whatever its interpreter has (tensorflow-cpu: the CPU).

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

# As the CLI does (cli/main.py): OpenMP threads sleep at barriers instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from astro.allocator import malloc_tuning_active, reexec_with_tuned_malloc  # noqa: E402
from benchmarks.registry import TRAIN_BF16_VARIANTS  # noqa: E402
from models.config import TrainingConfig  # noqa: E402
from models.networks import SingleBandCNN  # noqa: E402
from models.runtime import (  # noqa: E402
    cpu_has_native_bf16,
    resolve_cpu_micro_batch,
    resolve_precision,
    to_memory_format,
)
from models.training import loss_function, parameter_groups, train_step  # noqa: E402

VARIANTS: dict[str, dict] = {
    "nchw": {"channels_last": False},
    "channels_last": {"channels_last": True},
    "channels_last+micro10": {"channels_last": True, "micro_batch": 10},  # trainer default
    "channels_last+micro25": {"channels_last": True, "micro_batch": 25},
    "nchw+micro10": {"channels_last": False, "micro_batch": 10},
    "channels_last+compile": {"channels_last": True, "compile": True},
    "channels_last+amp": {"channels_last": True, "amp": True},  # CUDA only (bf16/fp16 autocast)
    # bf16 autocast on the CPU (the trainer's ``precision``); native only with AVX512-BF16/AMX.
    "channels_last+bf16": {"channels_last": True, "precision": "bf16"},
    "channels_last+micro10+bf16": {"channels_last": True, "micro_batch": 10, "precision": "bf16"},
    "nchw+bf16": {"channels_last": False, "precision": "bf16"},
    # What ``clustermass fit`` runs by default here: TrainingConfig's defaults resolved on this
    # device and process (precision ``auto``, ``cpu_micro_batch: auto``; see trainer_settings).
    "trainer": {"trainer": True},
}
DEFAULT_VARIANTS = ("nchw", "channels_last", "channels_last+micro10", "trainer")
#: Added to the defaults on a CPU with native bf16 (benchmarks/registry.py, shared with the runner).
CPU_BF16_VARIANTS = TRAIN_BF16_VARIANTS


def default_variants(device: str = "cpu") -> list[str]:
    """The variants measured when none are named: bf16 too on a CPU with native bf16."""
    names = list(DEFAULT_VARIANTS)
    if device == "cpu" and cpu_has_native_bf16():
        names[-1:-1] = CPU_BF16_VARIANTS
    return names


def trainer_settings(device: str = "cpu") -> dict:
    """The trainer's default step settings on ``device`` in this process (variant ``trainer``)."""
    tc = TrainingConfig()
    dev = torch.device(device)
    return {
        "channels_last": tc.channels_last,
        "micro_batch": (resolve_cpu_micro_batch(tc.cpu_micro_batch) if dev.type == "cpu" else None),
        "precision": resolve_precision(tc.precision, dev, amp=tc.amp),
    }


DEFAULT_KERAS_PYTHON = "/work/venv-keras/bin/python"
KERAS_MISSING = "not measured (no tensorflow venv at {python}; see --keras-python)"


def torch_rate(variant: dict, steps: int, repeats: int, device: str = "cpu") -> list[float]:
    """Images/s of ``repeats`` timings of ``steps`` trainer steps (after 3 warm-up steps).

    The batches live on the CPU and move to ``device`` inside the step, as in the trainer.
    """
    dev = torch.device(device)
    if variant.get("trainer"):
        variant = trainer_settings(device)
    if variant.get("amp") and dev.type != "cuda":
        raise ValueError("mixed-precision variants need --device cuda (CPU training is fp32)")
    torch.manual_seed(0)
    cl = variant.get("channels_last", True)
    model = to_memory_format(SingleBandCNN(), cl).to(dev)
    opt = torch.optim.Adam(parameter_groups(model, 1e-4), lr=1e-3)
    fwd = torch.compile(model) if variant.get("compile") else model
    loss = loss_function("mse")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * 50, 1, 128, 128, generator=g)
    y = torch.rand(steps * 50, generator=g) * 2 - 1
    amp = bool(variant.get("amp"))
    scaler = None
    if amp:
        scaler = torch.amp.GradScaler("cuda", enabled=not torch.cuda.is_bf16_supported())

    def step(i: int) -> None:
        sl = slice(50 * i, 50 * (i + 1))
        train_step(
            fwd, opt, loss, x[sl], None, y[sl], device=dev, channels_last=cl,
            micro_batch=variant.get("micro_batch"), amp=amp, scaler=scaler,
            precision=variant.get("precision", "fp32"),
        )  # fmt: skip

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for i in range(3):
        step(i % steps)
    rates = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        sync()
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


def measure(
    rounds: int = 3,
    steps: int = 10,
    repeats: int = 3,
    threads: int | None = None,
    variants: list[str] | None = None,
    keras_python: str = DEFAULT_KERAS_PYTHON,
    device: str = "cpu",
) -> dict:
    """Train-step images/s of each torch variant and of Keras, in alternating rounds.

    Returns
    -------
    dict
        ``median_best_img_per_s`` (name -> images/s), ``per_round_best``, ``ratio_vs_keras``
        (None without the Keras interpreter or when it failed) and ``keras_status``.
    """
    threads = threads or os.cpu_count() or 1
    names = variants or default_variants(device)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    torch.set_num_threads(threads)
    have_keras = Path(keras_python).exists()
    keras_status = "measured" if have_keras else KERAS_MISSING.format(python=keras_python)
    best: dict[str, list[float]] = {"keras": []}
    best.update({n: [] for n in names})
    meta: dict = {}
    for r in range(rounds):
        if have_keras and keras_status == "measured":
            try:
                k = keras_rate(keras_python, steps, repeats, threads)
            except (subprocess.CalledProcessError, ValueError, IndexError) as exc:
                tail = getattr(exc, "stderr", "") or str(exc)
                keras_status = "failed: " + " ".join(tail.strip().splitlines()[-3:])
            else:
                best["keras"].append(max(k["img_per_s"]))
                meta = {key: k.get(key) for key in ("params", "tf", "keras", "onednn", "gpus")}
        for n in names:
            best[n].append(max(torch_rate(VARIANTS[n], steps, repeats, device)))
        line = "  ".join(f"{n} {v[-1]:.1f}" for n, v in best.items() if v)
        print(f"round {r + 1}: {line} img/s", flush=True)
    med = {n: statistics.median(v) for n, v in best.items() if v}
    keras = med.get("keras") if keras_status == "measured" else None
    return {
        "params": {
            "rounds": rounds,
            "steps": steps,
            "repeats": repeats,
            "threads": threads,
            "variants": names,
            "keras_python": keras_python,
            "device": device,
        },  # fmt: skip
        "threads": threads,
        "device": device,
        "torch": torch.__version__,
        "batch": 50,
        "median_best_img_per_s": med,
        "per_round_best": {n: v for n, v in best.items() if v},
        "keras_status": keras_status,
        "keras_meta": meta,
        "ratio_vs_keras": {n: med[n] / keras for n in names} if keras else None,
        "cpu": _cpu_name(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "malloc_tuned": malloc_tuning_active(),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
        "trainer_settings": trainer_settings(device),
        "load_avg_end": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure, print and optionally save the result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--variants", default=None,
        help="comma-separated (default: nchw, channels_last, channels_last+micro10, trainer, "
        f"and {', '.join(CPU_BF16_VARIANTS)} on a CPU with native bf16)",
    )  # fmt: skip
    ap.add_argument("--keras-python", default=DEFAULT_KERAS_PYTHON)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    names = [v.strip() for v in (args.variants or "").split(",") if v.strip()] or None
    try:
        result = measure(
            args.rounds, args.steps, args.repeats, args.threads, names, args.keras_python,
            args.device,
        )  # fmt: skip
    except ValueError as exc:
        ap.error(str(exc))
    med = result["median_best_img_per_s"]
    if result["ratio_vs_keras"]:
        top = max(result["params"]["variants"], key=lambda n: med[n])
        print(f"best torch variant {top}: {med[top]:.1f} img/s; Keras {med['keras']:.1f} img/s; "
              f"ratio {med[top] / med['keras']:.2f}")  # fmt: skip
    else:
        print(f"Keras {result['keras_status']}: torch numbers only")
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    reexec_with_tuned_malloc()  # as the clustermass CLI: the trainer's allocator (astro.allocator)
    raise SystemExit(main())
