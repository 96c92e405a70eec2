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
