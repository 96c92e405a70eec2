"""File hashes cover every byte (they decide whether a file was already ingested)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from survey.files import sha256_path


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
