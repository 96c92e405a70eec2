"""Row-level integrity of catalogue parsing (issue 15): which copy of a duplicate id survives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    # rows are 1-based data rows: file rows 1 and 2 share CL0000, rows 3 and 4 share CL0002
    assert kept[2] == "CL0000" and 1 not in kept  # the valid copy of CL0000 is ingested
    assert kept[3] == "CL0002" and 4 not in kept  # the first valid copy wins
    reasons = {r.row: r.reason for r in parsed.rejects}
    assert reasons == {1: "redshift missing or not finite", 4: "duplicate identifier (row 3 kept)"}


def test_text_that_is_not_utf8_is_a_reject_naming_the_column_never_a_replacement_char(
    tmp_path: Path,
) -> None:
    names = np.array([f"Abell {i}".encode() for i in range(10)], dtype="S20")
    names[2] = b"Caf\xe9 cluster"  # latin-1 e-acute: not UTF-8
    names[4] = "Café cluster".encode()  # UTF-8: decoded as is
    ids = np.array([f"CL{i:04d}".encode() for i in range(10)], dtype="S10")
    ids[6] = b"CL\xf80006"  # latin-1 o-slash in the identifier
    path = make_catalogue(tmp_path / "latin1.fits", n=10, ID=ids, NAME=names)
    parsed = read_catalogue(path, tiny_spec("latin1", name_columns=["NAME"]))
    rejects = {r.row: r for r in parsed.rejects}
    assert sorted(rejects) == [3, 7]  # 1-based data rows
    assert (rejects[3].column, rejects[3].value) == ("NAME", "Caf\\xe9 cluster")
    assert (rejects[7].column, rejects[7].value) == ("ID", "CL\\xf80006")
    assert all(r.row_skipped and "not UTF-8" in r.reason for r in rejects.values())
    kept = {r.row: r for r in parsed.rows}
    assert sorted(kept) == [1, 2, 4, 5, 6, 8, 9, 10]
    assert kept[5].name == "Café cluster"
    stored = [r.name for r in parsed.rows] + [r.external_id for r in parsed.rows]
    assert not any("\ufffd" in s for s in stored if s)


def test_number_column_with_non_utf8_bytes_rejects_the_row_not_the_reader(tmp_path: Path) -> None:
    z = np.array([b"0.3"] * 10, dtype="S8")
    z[5] = b"0.3\xb0"  # latin-1 degree sign in a text-typed redshift column
    path = make_catalogue(tmp_path / "ztext.fits", n=10, Z=z)
    parsed = read_catalogue(path, tiny_spec("ztext"))
    assert [(r.row, r.column) for r in parsed.rejects] == [(6, "Z")]
    assert len(parsed.rows) == 9


def test_required_false_on_the_redshift_is_refused_not_ignored() -> None:
    """Issue 17: `required: false` on the redshift was accepted and silently ignored."""
    from pydantic import ValidationError

    from tests.survey.conftest import tiny_spec

    with pytest.raises(ValidationError, match="required: false"):
        tiny_spec(redshift={"column": "Z", "unit": "", "required": False})
    assert tiny_spec(redshift={"column": "Z", "unit": "", "required": True}).redshift.required
