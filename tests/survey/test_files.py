"""File hashes cover every byte (they decide whether a file was already ingested)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from survey.errors import CatalogueReadError, SurveyError
from survey.files import detect_format, file_identity, sha256_path


def test_a_change_near_the_end_of_a_large_file_changes_its_hash(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, 3 * 2**20 + 12345, dtype=np.uint8)
    path = tmp_path / "big.fits"
    path.write_bytes(data.tobytes())
    before = sha256_path(path)
    changed = data.copy()
    changed[-10] ^= 0xFF  # one byte, well past the first MiB
    path.write_bytes(changed.tobytes())
    after = sha256_path(path)
    assert after != before
    # and both are the sha256 of the whole file
    assert before == hashlib.sha256(data.tobytes()).hexdigest()
    assert after == hashlib.sha256(changed.tobytes()).hexdigest()


def test_file_identity_is_the_hash_and_size_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    path.write_bytes(b"a,b\n1,2\n")
    assert file_identity(path) == (hashlib.sha256(b"a,b\n1,2\n").hexdigest(), 8)
    with pytest.raises(SurveyError, match=r"^.*missing\.csv: no such file$"):
        file_identity(tmp_path / "missing.csv")
    with pytest.raises(SurveyError, match="no such file"):
        file_identity(tmp_path)  # a directory is no file


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("cat.fits", "fits"),
        ("CAT.FIT", "fits"),
        ("c.fts", "fits"),
        ("c.fits.gz", "fits"),
        ("c.fit.gz", "fits"),
        ("c.fz", "fits"),
        ("c.ecsv", "ecsv"),
        ("c.ecsv.gz", "ecsv"),
        ("c.csv", "csv"),
        ("c.CSV.gz", "csv"),
        ("c.vot", "votable"),
        ("c.vot.gz", "votable"),
        ("c.xml", "votable"),
        ("c.xml.gz", "votable"),
    ],
)
def test_the_table_format_follows_the_file_name(name: str, fmt: str) -> None:
    assert detect_format(Path("/data") / name) == fmt


def test_an_unknown_suffix_names_the_file_and_the_known_suffixes() -> None:
    with pytest.raises(CatalogueReadError) as err:
        detect_format(Path("/data/cat.parquet"))
    msg = str(err.value)
    assert msg.startswith("/data/cat.parquet: cannot tell the table format from the name; ")
    assert msg.endswith(
        "use one of the suffixes ['.fits', '.fit', '.fts', '.fits.gz', '.fit.gz', '.fz', "
        "'.csv', '.ecsv', '.vot', '.xml'] or set 'format' in the spec"
    )
