"""Mutation testing on demand: ``python -m benchmarks.mutation`` (docs/testing.md).

Runs mutmut (the ``mutation`` extra: ``pip install -e '.[mutation]'``) over the modules that
``[tool.mutmut]`` in pyproject.toml names, single-process and niced, then prints the score
per module as a Markdown table. Never part of the default test run or CI.

    python -m benchmarks.mutation                  # full run (about 30 min on 2 cores)
    python -m benchmarks.mutation 'models.folds*'  # only the mutants matching these globs
    python -m benchmarks.mutation --report         # the table of the last run, no run

The database tests need ``CLUSTERMASS_TEST_DATABASE_URL`` (as for pytest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# mutmut's exit-code meaning of a mutant (mutmut.stats.status_by_exit_code).
_STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "killed",  # caught by the type check
    None: "not checked",
}


def status_counts(mutants_dir: Path) -> dict[str, Counter]:
    """Mutant statuses per module (``models/folds.py`` -> Counter) from mutmut's .meta files."""
    out: dict[str, Counter] = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = str(meta.relative_to(mutants_dir))[: -len(".meta")]
        out[module] = Counter(_STATUS.get(c, "suspicious") for c in codes.values())
    return out


def score_table(counts: dict[str, Counter]) -> str:
    """Markdown table: mutants, killed, survived, no tests, timeouts and score per module.

    Score = (killed + timeout) / (every mutant that was checked); a mutant no test reaches
    counts as a survivor.
    """
    cols = ["killed", "timeout", "survived", "no tests", "suspicious"]
    lines = [
        "| module | mutants | killed | timeout | survived | no tests | suspicious | score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total: Counter = Counter()
    for module, c in counts.items():
        total.update(c)
        lines.append(_row(f"`{module}`", c, cols))
    lines.append(_row("**all**", total, cols))
    return "\n".join(lines)


def _row(name: str, c: Counter, cols: list[str]) -> str:
    checked = sum(c[k] for k in cols)
    score = (c["killed"] + c["timeout"]) / checked if checked else float("nan")
    return f"| {name} | {checked} | " + " | ".join(str(c[k]) for k in cols) + f" | {score:.1%} |"


def main(argv: list[str] | None = None) -> int:
    """Run mutmut (unless ``--report``) and print the score table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__)
    parser.add_argument("mutants", nargs="*", help="mutant name globs (default: all)")
    parser.add_argument("--report", action="store_true", help="only print the last run's table")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="mutants run at once (default 1: the machine is usually shared; 2 on an idle 2-core one)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if not args.report:
        mutmut = shutil.which("mutmut")
        if mutmut is None:
            print("mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
            return 2
        cmd = ["nice", "-n", "10", mutmut, "run", "--max-children", str(args.jobs), *args.mutants]
        rc = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy()).returncode
        if rc:
            return rc
    counts = status_counts(ROOT / "mutants")
    if not counts:
        print("no mutmut results under mutants/: run without --report first", file=sys.stderr)
        return 1
    print(score_table(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
