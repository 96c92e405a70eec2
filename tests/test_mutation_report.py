"""The mutation report (benchmarks.mutation) counts mutmut's verdicts per module."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.mutation import score_table, status_counts


def test_score_counts_timeouts_as_killed_and_unreached_mutants_as_survivors(tmp_path: Path) -> None:
    meta = tmp_path / "models" / "folds.py.meta"
    meta.parent.mkdir()
    codes = {"a": 1, "b": 1, "c": -24, "d": 0, "e": 33, "f": None}  # f: not checked, left out
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    counts = status_counts(tmp_path)
    assert counts["models/folds.py"]["killed"] == 2
    table = score_table(counts)
    assert "| `models/folds.py` | 5 | 2 | 1 | 1 | 1 | 0 | 60.0% |" in table
    assert table.splitlines()[-1].startswith("| **all** | 5 |")


def test_jobs_must_be_positive() -> None:
    import pytest

    from benchmarks.mutation import main

    with pytest.raises(SystemExit) as exc:
        main(["--jobs", "0", "--report"])
    assert exc.value.code == 2


def test_mutation_check_finds_mutants_by_glob_in_mutant_order(tmp_path: Path) -> None:
    from benchmarks.mutation_check import mutant_names

    (tmp_path / "pkg").mkdir()
    keys = {f"pkg.mod.x_f__mutmut_{i}": 0 for i in (10, 2, 1)}
    keys |= {"pkg.mod.x_g__mutmut_1": 1}
    (tmp_path / "pkg" / "mod.py.meta").write_text(json.dumps({"exit_code_by_key": keys}))
    assert mutant_names(tmp_path, ["pkg.mod.x_f__*"]) == [
        "pkg.mod.x_f__mutmut_1", "pkg.mod.x_f__mutmut_2", "pkg.mod.x_f__mutmut_10",
    ]  # fmt: skip
    assert mutant_names(tmp_path, ["*x_g*", "nothing"]) == ["pkg.mod.x_g__mutmut_1"]
