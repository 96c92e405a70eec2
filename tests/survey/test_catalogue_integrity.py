"""Row-level integrity of catalogue parsing (issue 15): which copy of a duplicate id survives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from survey.catalogues import read_catalogue
from tests.survey.conftest import make_catalogue, tiny_spec


def test_duplicate_whose_first_copy_is_invalid_keeps_the_valid_copy(tmp_path: Path) -> None:
    ids = np.array([f"CL{i:04d}" for i in range(10)])
    ids[1] = ids[0]  # rows 0 and 1 share an id; row 0 has no redshift
    ids[3] = ids[2]  # rows 2 and 3 share an id; both are valid
    z = np.linspace(0.1, 0.5, 10)
    z[0] = np.nan
    path = make_catalogue(tmp_path / "dup.fits", n=10, ID=ids, Z=z)
    parsed = read_catalogue(path, tiny_spec("dup"))
    kept = {c.row: c.external_id for c in parsed.rows}
    assert kept[1] == "CL0000" and 0 not in kept  # the valid copy of CL0000 is ingested
    assert kept[2] == "CL0002" and 3 not in kept  # the first valid copy wins
    reasons = {r.row: r.reason for r in parsed.rejects}
    assert reasons == {0: "redshift missing or not finite", 3: "duplicate identifier (row 2 kept)"}
