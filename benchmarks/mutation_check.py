"""Drive mutmut's mutants against chosen tests in one process: a quick kill check.

``mutmut run`` runs, for each mutant, every test that its stats say calls the mutated function
(a mock catalogue fixture makes that minutes per mutant). When a test is written against a
listed survivor, this checks it in milliseconds per mutant: with ``mutants/`` from an earlier
``mutmut run`` (the mutated tree, with mutmut's trampolines), it copies ``tests/`` in, then for
each mutant named by the globs sets ``MUTANT_UNDER_TEST`` and calls the given test functions
(no fixtures but ``tmp_path``) in this process. A mutant is killed when one of them raises.
It is a developer's check; the score in docs/testing.md is mutmut's own (``python -m
benchmarks.mutation``), whose next run confirms these verdicts.

Usage (from the repository root)::

    python -m benchmarks.mutation_check 'mocks.icm.x_merger_boosts__mutmut_*' \\
        tests/mocks/test_mergers.py::test_boosts_are_exactly_the_documented_formula_with_its_clips
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import inspect
import json
import os
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mutant_names(mutants_dir: Path, patterns: Sequence[str]) -> list[str]:
    """Names of the mutants in ``mutants_dir/**/*.meta`` matching any glob, in mutant order."""
    names = [
        key
        for meta in sorted(mutants_dir.rglob("*.meta"))
        for key in json.loads(meta.read_text())["exit_code_by_key"]
        if any(fnmatch.fnmatch(key, p) for p in patterns)
    ]
    return sorted(names, key=lambda n: (n.rsplit("_", 1)[0], int(n.rsplit("_", 1)[1])))


def _load_test_file(path: Path) -> object:
    """Execute a test file as the module pytest would name it (``tests.x.test_y``)."""
    name = ".".join(path.with_suffix("").parts)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}: not a Python test file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _call(test: Callable[..., object]) -> None:
    kwargs = {}
    if "tmp_path" in inspect.signature(test).parameters:
        kwargs["tmp_path"] = Path(tempfile.mkdtemp(prefix="mutcheck-"))
    test(**kwargs)


class _Timeout(Exception):
    pass


def check(names: Sequence[str], tests: Sequence[str], timeout_s: int = 20) -> dict[str, str]:
    """Verdict per mutant: ``survived``, ``killed by <test>`` or ``timeout``.

    Must run with ``mutants/`` first on ``sys.path`` (its modules carry the trampolines).
    """
    funcs = []
    for spec in tests:
        path, name = spec.split("::")
        funcs.append((name, getattr(_load_test_file(Path(path)), name)))
    os.environ["MUTANT_UNDER_TEST"] = ""
    for _, f in funcs:
        _call(f)  # they pass on the original code

    def _alarm(*_: object) -> None:
        raise _Timeout

    signal.signal(signal.SIGALRM, _alarm)
    verdicts = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mutant in names:
            os.environ["MUTANT_UNDER_TEST"] = mutant
            verdict = "survived"
            for name, f in funcs:
                signal.alarm(timeout_s)
                try:
                    _call(f)
                except _Timeout:
                    verdict = "timeout"
                    break
                except Exception:  # noqa: BLE001 - any failure of a test kills the mutant
                    verdict = f"killed by {name}"
                    break
                finally:
                    signal.alarm(0)
            verdicts[mutant] = verdict
    os.environ["MUTANT_UNDER_TEST"] = ""
    return verdicts


def main(argv: list[str] | None = None) -> int:
    """Print a verdict per mutant and the survivors; exit 1 when one survived."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mutation_check", description=__doc__)
    ap.add_argument("patterns", help="comma-separated mutant name globs")
    ap.add_argument("tests", nargs="+", help="tests/...py::test_name (no fixtures but tmp_path)")
    ap.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    args = ap.parse_args(argv)
    if not (args.mutants / "mutmut-stats.json").exists() and not any(args.mutants.rglob("*.meta")):
        ap.error(f"{args.mutants}: no mutants; run `python -m benchmarks.mutation` first")
    shutil.copytree(ROOT / "tests", args.mutants / "tests", dirs_exist_ok=True)
    os.chdir(args.mutants)
    sys.path.insert(0, str(args.mutants))
    names = mutant_names(args.mutants, args.patterns.split(","))
    verdicts = check(names, args.tests)
    for mutant, verdict in verdicts.items():
        print(f"{mutant:60s} {verdict}")
    survivors = [m for m, v in verdicts.items() if v == "survived"]
    print("survivors:", " ".join(survivors) or "none")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
