"""Run every benchmark of the project and write ``docs/benchmarks.md`` (``python -m benchmarks``).

Each benchmark runs in its own interpreter (``python -m benchmarks.<module> ... --json FILE``)
from the repository root: thread settings that must precede numpy/torch (one thread for the mock
generator, ``OMP_WAIT_POLICY``) hold, one benchmark's memory does not weigh on the next, and every
benchmark stays runnable on its own with the command the report prints. The runner collects the
JSON results, describes the machine (:mod:`benchmarks.machine`) and renders the Markdown
(:mod:`benchmarks.report`); results are also saved as JSON (``--json``, default next to
``--out``) so that a later run, e.g. on a GPU machine, can be merged into the same report
(``--merge``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from astro.allocator import malloc_tuned_environ
from benchmarks import machine
from benchmarks._db import default_admin_url
from benchmarks.errors import BenchmarkError
from benchmarks.registry import (
    BENCHMARKS,
    TRAIN_BF16_VARIANTS,
    TRAIN_VARIANTS,
    Benchmark,
    is_complete,
)
from benchmarks.report import render

__all__ = [
    "BENCHMARKS",
    "RunOptions",
    "benchmark_args",
    "check_target",
    "load_runs",
    "main",
    "run_benchmarks",
    "write_outputs",
]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("docs/benchmarks.md")
DEFAULT_KERAS_PYTHON = "/work/venv-keras/bin/python"
JSON_FORMAT = 1
MARKER = re.compile(r"<!-- benchmarks: quick=(\d) complete=(\d)")
Device = Literal["cpu", "cuda"]
Progress = Callable[[str, int, int], None]


@dataclass
class RunOptions:
    """What to run and where to write it (the command-line options of ``python -m benchmarks``)."""

    quick: bool = False
    only: list[str] = field(default_factory=lambda: list(BENCHMARKS))
    device: Device = "cpu"
    out: Path = DEFAULT_OUT
    json: Path | None = None
    admin_url: str = field(default_factory=default_admin_url)
    keras_python: str = DEFAULT_KERAS_PYTHON
    threads: int | None = None
    merge: list[Path] = field(default_factory=list)
    render_only: bool = False
    force: bool = False
    verbose: bool = False

    @property
    def json_path(self) -> Path:
        """Where the results JSON goes: ``--json``, else ``--out`` with the suffix ``.json``."""
        return self.json or self.out.with_suffix(".json")

    def command_line(self) -> str:
        """The ``python -m benchmarks`` command that reproduces this run."""
        parts = ["python -m benchmarks"]
        if self.quick:
            parts.append("--quick")
        if list(self.only) != list(BENCHMARKS):
            parts.append("--only " + ",".join(self.only))
        parts.append(f"--device {self.device}")
        if self.threads:
            parts.append(f"--threads {self.threads}")
        parts += [f"--merge {p}" for p in self.merge]
        return " ".join(parts)


def parse_only(text: str | Sequence[str] | None) -> list[str]:
    """Benchmark keys from ``--only`` ("mocks,sql"), in the registry's order; all when empty."""
    if text is None:
        return list(BENCHMARKS)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip() for n in items if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise BenchmarkError(
            f"--only: unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}"
        )
    return [k for k in BENCHMARKS if k in names] or list(BENCHMARKS)


def benchmark_args(bench: Benchmark, options: RunOptions) -> list[str]:
    """The command-line arguments of ``bench`` for this run (without ``--json``)."""
    args = list(bench.quick if options.quick else bench.full)
    threads = options.threads or os.cpu_count() or 1
    if bench.key == "train":
        variants = TRAIN_VARIANTS[options.device]
        if options.device == "cpu" and {"avx512_bf16", "amx_bf16"} & set(machine.cpu_flags()):
            variants += "," + ",".join(TRAIN_BF16_VARIANTS)  # native bf16: same run
        args += ["--variants", variants, "--threads", str(threads)]
        args += ["--keras-python", options.keras_python]
    if bench.key == "inference":
        args += ["--threads", str(threads)]
        if options.device == "cuda" and not options.quick:  # GPU batch sizes (issue 19 item 6)
            args += ["--n", "2048", "--batches", "256,1024,2048"]
    if bench.uses_device:
        args += ["--device", options.device]
    if bench.uses_database and options.admin_url != default_admin_url():
        args += ["--admin-url", options.admin_url]
    return args


def _display(bench: Benchmark, args: list[str]) -> str:
    """The standalone command a reader can paste (passwords in URLs hidden)."""
    shown = [re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", a) for a in args]
    return " ".join(["python", f"benchmarks/{bench.module}.py", *shown])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_one(bench: Benchmark, options: RunOptions, workdir: Path) -> dict[str, Any]:
    """Run one benchmark in its own interpreter; its result dict, or the reason it failed."""
    args = benchmark_args(bench, options)
    out_json = workdir / f"{bench.key}.json"
    log = workdir / f"{bench.key}.log"
    cmd = [sys.executable, "-m", f"benchmarks.{bench.module}", *args, "--json", str(out_json)]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    env = malloc_tuned_environ(env) or env  # the CLI's allocator (astro.allocator), Keras too
    t0 = time.perf_counter()
    if options.verbose:
        proc = subprocess.run(cmd, cwd=ROOT, env=env)
    else:
        with log.open("w") as fh:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    entry: dict[str, Any] = {
        "command": _display(bench, args),
        "wall_s": time.perf_counter() - t0,
    }
    if proc.returncode == 0 and out_json.exists():
        return {**entry, "status": "ok", "data": json.loads(out_json.read_text())}
    tail = _tail(log) if not options.verbose else "(output above)"
    return {**entry, "status": "failed", "error": f"exit code {proc.returncode}\n{tail}".strip()}


def load_runs(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The runs saved in results JSON files (``--json`` of earlier invocations), in order."""
    runs: list[dict[str, Any]] = []
    for path in paths:
        try:
            saved = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BenchmarkError(f"--merge {path}: cannot read a results file ({exc})") from exc
        if not isinstance(saved, dict) or saved.get("format") != JSON_FORMAT:
            raise BenchmarkError(
                f"--merge {path}: not a results file of `python -m benchmarks` (format "
                f"{JSON_FORMAT}; write one with --json)"
            )
        runs.extend(saved["runs"])
    return runs


def check_target(out: Path, *, quick: bool, complete: bool, force: bool) -> None:
    """Refuse to replace a full report with a quick or partial one (unless ``force``).

    A report without the generator's marker (hand-written) counts as full.
    """
    if force or not out.exists() or (not quick and complete):
        return
    match = MARKER.search(out.read_text(errors="replace")[:4000])
    existing_full = match is None or (match.group(1) == "0" and match.group(2) == "1")
    if existing_full:
        what = "a --quick" if quick else "a partial (--only)"
        raise BenchmarkError(
            f"--out {out} holds full-size results; {what} run would replace them. Pass "
            "--out PATH to write elsewhere, --merge the saved results, or --force"
        )


def run_benchmarks(
    options: RunOptions,
    progress: Progress | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Describe the machine, run the selected benchmarks, return this run's record.

    ``checkpoint(record)`` is called after each benchmark with the record so far (the results
    JSON is saved then, so a run stopped from outside, e.g. at the end of a GPU lease, keeps
    what it measured).
    """
    if options.device not in ("cpu", "cuda"):
        raise BenchmarkError(f"--device {options.device!r}: choose 'cpu' or 'cuda'")
    if options.device == "cuda" and machine.gpu_description() is None:
        raise BenchmarkError(
            "--device cuda: torch sees no CUDA device on this machine; choose --device cpu"
        )
    uses_db = any(BENCHMARKS[k].uses_database for k in options.only)
    desc = machine.describe(options.admin_url if uses_db else None, device=options.device)
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cmbench-") as tmp:
        for i, key in enumerate(options.only):
            if progress is not None:
                progress(key, i, len(options.only))
            results[key] = run_one(BENCHMARKS[key], options, Path(tmp))
            if checkpoint is not None:
                checkpoint(_record(desc, options, t0, results))
    if progress is not None:
        progress("done", len(options.only), len(options.only))
    return _record(desc, options, t0, results)


def _record(
    desc: dict[str, Any], options: RunOptions, t0: float, results: dict[str, Any]
) -> dict[str, Any]:
    return {
        "machine": machine.finish(desc),
        "options": {
            "quick": options.quick,
            "only": list(options.only),
            "device": options.device,
            "threads": options.threads or os.cpu_count(),
            "command": options.command_line(),
        },
        "elapsed_s": time.perf_counter() - t0,
        "results": dict(results),
    }


def write_outputs(runs: list[dict[str, Any]], options: RunOptions) -> str:
    """Render the Markdown of ``runs`` into ``options.out`` and save the runs as JSON."""
    text = render(runs)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(text)
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    options.json_path.write_text(json.dumps({"format": JSON_FORMAT, "runs": runs}, indent=1))
    return text


def execute(options: RunOptions, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Check the target, measure (unless ``render_only``), merge, write; return all runs."""
    previous = load_runs(options.merge)
    if options.render_only and not previous:
        raise BenchmarkError("--render-only needs --merge RESULTS.json (nothing to render)")
    if not options.render_only:
        planned = [*previous, {"results": {k: {"status": "ok"} for k in options.only}}]
        check_target(
            options.out, quick=options.quick, complete=is_complete(planned), force=options.force
        )

    def save_partial(record: dict[str, Any]) -> None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(
            json.dumps({"format": JSON_FORMAT, "runs": [*previous, record]}, indent=1)
        )

    runs = (
        previous
        if options.render_only
        else [*previous, run_benchmarks(options, progress, checkpoint=save_partial)]
    )
    write_outputs(runs, options)
    return runs


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks``."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every benchmark of clustermass and write docs/benchmarks.md.",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes (tests the runner, ~2 min)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {list(BENCHMARKS)}")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown report")
    ap.add_argument("--json", type=Path, default=None, help="results JSON [default: OUT.json]")
    ap.add_argument("--admin-url", default=default_admin_url(), help="PostgreSQL admin URL")
    ap.add_argument("--keras-python", default=DEFAULT_KERAS_PYTHON, help="tensorflow interpreter")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [default: all]")
    ap.add_argument("--merge", type=Path, action="append", default=[], help="earlier results JSON")
    ap.add_argument("--render-only", action="store_true", help="re-render --merge, measure nothing")
    ap.add_argument("--force", action="store_true", help="replace a full report with a lesser one")
    ap.add_argument("--verbose", "-v", action="store_true", help="show each benchmark's output")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``; exit code 1 when a benchmark failed."""
    args = build_parser().parse_args(argv)
    try:
        options = RunOptions(
            quick=args.quick, only=parse_only(args.only), device=args.device, out=args.out,
            json=args.json, admin_url=args.admin_url, keras_python=args.keras_python,
            threads=args.threads, merge=args.merge, render_only=args.render_only,
            force=args.force, verbose=args.verbose,
        )  # fmt: skip
        started = time.perf_counter()

        def progress(key: str, done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            label = "finished" if key == "done" else f"running {key} ({BENCHMARKS[key].title})"
            print(f"[{done}/{total}] {elapsed:6.0f} s  {label}", file=sys.stderr, flush=True)

        runs = execute(options, progress)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return summarize(runs, options)


def summarize(runs: list[dict[str, Any]], options: RunOptions) -> int:
    """Print where the report went and which benchmarks failed; the exit code."""
    failed = [k for k, v in runs[-1]["results"].items() if v.get("status") != "ok"]
    for key in failed:
        print(f"{key} failed: {runs[-1]['results'][key]['error']}", file=sys.stderr)
    print(f"wrote {options.out} and {options.json_path}")
    return 1 if failed else 0
