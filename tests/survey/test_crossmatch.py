"""Sky + redshift cross-matching."""

from __future__ import annotations

import numpy as np
import pytest

from survey.crossmatch import crossmatch, describe_method


def _offset(ra: np.ndarray, dec: np.ndarray, arcsec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each point north by ``arcsec``."""
    return ra, dec + arcsec / 3600.0


def test_recovers_known_pairs_and_applies_cuts() -> None:
    rng = np.random.default_rng(2)
    n = 200
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-0.95, 0.95, n)))
    z = rng.uniform(0.05, 0.6, n)
    sep = rng.uniform(0, 100, n)
    sep[:20] = 500.0  # too far
    zb = z + rng.normal(0, 0.003, n)
    zb[20:30] += 0.2  # redshift mismatch
    rb, db = _offset(ra, dec, sep)
    matches = crossmatch(ra, dec, z, rb, db, zb, max_sep_arcsec=180, max_dz=0.05)
    got = {(m.index_a, m.index_b) for m in matches}
    assert got == {(i, i) for i in range(30, n)}
    for m in matches:
        assert m.separation_arcsec == pytest.approx(sep[m.index_a], abs=1e-3)
        assert m.delta_z == pytest.approx(abs(z[m.index_a] - zb[m.index_b]))
    # without the redshift cut the mismatched ones come back
    assert len(crossmatch(ra, dec, z, rb, db, zb, max_sep_arcsec=180, max_dz=None)) == n - 20


def test_one_to_one_keeps_the_closest() -> None:
    ra_a = np.array([10.0, 10.0])
    dec_a = np.array([0.0, 30 / 3600])
    z = np.array([0.1, 0.1])
    ra_b, dec_b, z_b = np.array([10.0, 50.0]), np.array([0.0, 0.0]), np.array([0.1, 0.1])
    one = crossmatch(ra_a, dec_a, z, ra_b, dec_b, z_b, max_sep_arcsec=60)
    assert [(m.index_a, m.index_b) for m in one] == [(0, 0)]
    both = crossmatch(ra_a, dec_a, z, ra_b, dec_b, z_b, max_sep_arcsec=60, one_to_one=False)
    assert len(both) == 2


def test_relative_dz_and_edge_cases() -> None:
    a = (np.array([1.0]), np.array([1.0]), np.array([1.0]))
    b = (np.array([1.0]), np.array([1.0]), np.array([1.09]))
    assert crossmatch(*a, *b, max_dz=0.05) == []
    assert len(crossmatch(*a, *b, max_dz=0.05, relative_dz=True)) == 1  # 0.09/2 = 0.045
    assert crossmatch(*a, np.array([]), np.array([]), np.array([])) == []
    with pytest.raises(ValueError, match="max_sep_arcsec"):
        crossmatch(*a, *b, max_sep_arcsec=0)
    assert "dz/(1+z)<=0.05" in describe_method(60, 0.05, True)
