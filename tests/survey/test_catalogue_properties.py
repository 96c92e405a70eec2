"""Property tests: random tables and corrupted files never crash the reader in an unplanned way."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey.catalogues import read_catalogue
from survey.errors import SurveyError
from survey.plausibility import M500C_MSUN, REDSHIFT
from tests.survey.conftest import make_catalogue, tiny_spec

_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-10, max_value=400),
)
_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(
    data=st.lists(st.tuples(_values, _values, _values, _values), min_size=1, max_size=25),
)
def test_random_values_are_either_valid_rows_or_rejects(data: list[tuple[float, ...]]) -> None:
    arr = np.array(data, dtype=float)
    n = len(arr)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_catalogue(
            Path(tmp) / "r.fits", n=n, RA=arr[:, 0], DEC=arr[:, 1], Z=arr[:, 2], M500=arr[:, 3]
        )
        try:
            parsed = read_catalogue(path, tiny_spec())
        except SurveyError as exc:
            assert "r.fits" in str(exc)
            return
    assert len(parsed.rows) + parsed.n_skipped == n
    for r in parsed.rows:
        assert 0 <= r.ra_deg < 360 and -90 <= r.dec_deg <= 90
        assert 0 < r.redshift <= REDSHIFT.hi
        m_msun = None if r.log10_m500c is None else 10**r.log10_m500c / 0.7  # h = 0.7
        assert (
            m_msun is None
            or M500C_MSUN.lo <= m_msun * (1 + 1e-12)
            and (m_msun <= M500C_MSUN.hi * (1 + 1e-12))
        )
    for rej in parsed.rejects:
        assert rej.row is not None and 1 <= rej.row <= n and rej.column and rej.reason


@_SETTINGS
@given(
    cut=st.integers(min_value=0, max_value=9000),
    flips=st.lists(st.tuples(st.integers(0, 8639), st.integers(0, 255)), max_size=6),
)
def test_corrupted_fits_bytes_give_a_clear_error_or_valid_rows(
    cut: int, flips: list[tuple[int, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        good = make_catalogue(Path(tmp) / "g.fits", n=30)
        data = bytearray(good.read_bytes())
        for pos, byte in flips:  # corrupt the headers (first three 2880-byte blocks)
            data[pos] = byte
        if cut:
            data = data[: max(len(data) - cut, 0)]
        bad = Path(tmp) / "bad.fits"
        bad.write_bytes(bytes(data))
        try:
            parsed = read_catalogue(bad, tiny_spec())
        except SurveyError as exc:
            assert "bad.fits" in str(exc)
            return
    assert len(parsed.rows) + parsed.n_skipped == 30
