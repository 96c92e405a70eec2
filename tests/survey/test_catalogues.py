"""The catalogue reader: conversions, per-row rejects, whole-file refusals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from survey.catalogues import r500c_from_m500c, read_catalogue
from survey.cosmology import convert_mass_definition
from survey.errors import CatalogueColumnError, CatalogueReadError, SurveyError
from tests.survey.conftest import make_catalogue, tiny_spec, write_table


def test_valid_catalogue_converts_units_and_little_h(tmp_path: Path) -> None:
    path = make_catalogue(tmp_path / "c.fits", M500=np.full(20, 2.0), LX=np.full(20, 3.0))
    parsed = read_catalogue(path, tiny_spec())
    assert parsed.n_input == 20 and len(parsed.rows) == 20 and not parsed.rejects
    row = parsed.rows[0]
    # 2e14 Msun for h = 0.7 is 1.4e14 h^-1 Msun
    assert row.log10_m500c == pytest.approx(math.log10(2e14 * 0.7))
    assert "x0.7" in row.mass_note
    lx = row.observables[0]
    assert lx.name == "L_X" and lx.unit == "erg / s" and lx.value == pytest.approx(3e44)
    assert "0.1-2.4 keV" in lx.note
    # R500c derived from M500c: M = 4/3 pi 500 rho_c(z) R^3
    assert row.r500c_mpc_h == pytest.approx(
        float(
            r500c_from_m500c(np.array([row.log10_m500c]), np.array([row.redshift]), tiny_spec())[0]
        )
    )
    assert parsed.sha256 and parsed.size_bytes == path.stat().st_size


def test_bad_rows_are_rejected_with_row_and_column(tmp_path: Path) -> None:
    m = np.full(20, 1.0)
    m[3], m[4] = np.nan, -2.0
    ra = np.full(20, 10.0)
    ra[5], ra[6] = 400.0, 360.0  # out of range; exactly 360 wraps to 0
    dec = np.zeros(20)
    dec[7] = -95.0
    z = np.full(20, 0.2)
    z[8], z[9] = 0.0, np.nan
    path = make_catalogue(tmp_path / "bad.fits", M500=m, RA=ra, DEC=dec, Z=z)
    parsed = read_catalogue(path, tiny_spec())
    skipped = {r.row: r for r in parsed.rejects if r.row_skipped}
    assert set(skipped) == {4, 5, 6, 8, 9, 10}  # 1-based data rows
    assert skipped[4].column == "M500" and "not finite" in skipped[4].reason
    assert skipped[5].column == "M500" and "positive" in skipped[5].reason
    assert skipped[6].column == "RA" and "out of range" in skipped[6].reason
    assert skipped[8].column == "DEC"
    assert skipped[9].column == "Z" and "> 0" in skipped[9].reason
    assert skipped[10].column == "Z" and "missing" in skipped[10].reason
    msg = skipped[5].message(path.name)
    assert "bad.fits row 5 column 'M500'" in msg and "row skipped" in msg
    assert len(parsed.rows) == 14
    assert [r.ra_deg for r in parsed.rows if r.row == 7] == [0.0]


def test_optional_values_are_dropped_not_rows(tmp_path: Path) -> None:
    lx = np.full(20, 1.0)
    lx[2] = np.nan
    parsed = read_catalogue(make_catalogue(tmp_path / "c.fits", LX=lx), tiny_spec())
    assert len(parsed.rows) == 20
    (rej,) = parsed.rejects
    assert rej.row == 3 and not rej.row_skipped and "value dropped" in rej.message("c")
    assert [o.name for o in parsed.rows[2].observables] == []


def test_optional_mass_keeps_the_row(tmp_path: Path) -> None:
    m = np.full(20, 1.0)
    m[0] = np.nan
    spec = tiny_spec(mass={"column": "M500", "h_convention": "none", "required": False})
    parsed = read_catalogue(make_catalogue(tmp_path / "c.fits", M500=m), spec)
    assert len(parsed.rows) == 20 and parsed.rows[0].log10_m500c is None


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    ids = np.array([f"CL{i}" for i in range(20)])
    ids[5] = "CL1"
    parsed = read_catalogue(make_catalogue(tmp_path / "c.fits", ID=ids), tiny_spec())
    (rej,) = parsed.rejects
    assert rej.row == 6 and "duplicate identifier (row 2 kept)" in rej.reason


def test_missing_mapped_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_table(tmp_path / "c.fits", {"ID": ["a"], "RA": [1.0], "DEC": [1.0], "Z": [0.1]})
    with pytest.raises(CatalogueColumnError) as err:
        read_catalogue(path, tiny_spec())
    assert "c.fits" in str(err.value) and "M500" in str(err.value) and "LX" in str(err.value)


def test_truncated_and_non_fits_files(tmp_path: Path) -> None:
    good = make_catalogue(tmp_path / "good.fits", n=400)
    data = good.read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(data[: len(data) - 3000])
    with pytest.raises(CatalogueReadError, match=r"cut\.fits: truncated FITS file: HDU 1"):
        read_catalogue(cut, tiny_spec())
    junk = tmp_path / "junk.fits"
    junk.write_text("name,ra\nA,1\n")
    with pytest.raises(CatalogueReadError, match=r"junk\.fits: not a FITS file"):
        read_catalogue(junk, tiny_spec())
    with pytest.raises(CatalogueReadError, match="no such file"):
        read_catalogue(tmp_path / "absent.fits", tiny_spec())


def test_mostly_bad_file_is_refused_whole(tmp_path: Path) -> None:
    path = make_catalogue(tmp_path / "c.fits", Z=np.zeros(20))
    with pytest.raises(CatalogueReadError, match="20 of 20 rows are invalid.*nothing ingested"):
        read_catalogue(path, tiny_spec())


def test_m200c_is_converted_to_m500c(tmp_path: Path) -> None:
    m = np.full(20, 5.0)
    spec = tiny_spec(mass={"column": "M500", "definition": "200c", "h_convention": "none"})
    parsed = read_catalogue(make_catalogue(tmp_path / "c.fits", M500=m), spec)
    row = parsed.rows[0]
    expect = convert_mass_definition(
        np.array([5e14 * 0.7]), np.array([row.redshift]), "200c", "500c", spec.cosmology
    )[0]
    assert row.log10_m500c == pytest.approx(math.log10(expect), abs=1e-3)
    ratio = 10**row.log10_m500c / (5e14 * 0.7)
    assert 0.6 < ratio < 0.8  # NFW, c200 ~ 4-5
    assert "M200c->M500c" in row.mass_note and "diemer19" in row.mass_note


def test_name_coordinates_and_log_masses_with_linear_errors(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "e.fits",
        {
            "Name": ["eFEDS J093712.9+031652", "eFEDS J083811.9-015935", "garbage"],
            "Z": [0.25, 0.3, 0.2],
            "LOGM": [14.0, 13.5, 14.0],
            "LO": [2e13, 1e13, 1e13],
            "HI": [3e13, 1e13, 1e13],
        },
        {"LOGM": "Msun/h", "LO": "Msun/h", "HI": "Msun/h"},
    )
    spec = tiny_spec(
        id_column="Name",
        position={"from_name": {"column": "Name"}},
        mass={"column": "LOGM", "log10": True, "error_lo": "LO", "error_hi": "HI",
              "error_unit": "Msun/h", "h_convention": "unit"},
        luminosity=None, max_reject_fraction=0.5,
    )  # fmt: skip
    parsed = read_catalogue(path, spec)
    a, b = parsed.rows
    assert a.ra_deg == pytest.approx(15 * (9 + 37 / 60 + 12.9 / 3600))
    assert a.dec_deg == pytest.approx(3 + 16 / 60 + 52 / 3600)
    assert b.dec_deg == pytest.approx(-(1 + 59 / 60 + 35 / 3600))
    assert a.log10_m500c == pytest.approx(14.0)  # already h^-1 Msun
    lo, hi = math.log10(1e14 / 8e13), math.log10(1.3e14 / 1e14)
    assert a.log10_m500c_err == pytest.approx(0.5 * (lo + hi))
    (rej,) = parsed.rejects
    assert rej.row == 3 and rej.column == "Name"


def test_csv_and_ecsv_inputs(tmp_path: Path) -> None:
    # ECSV keeps the units; plain CSV has none, so the spec must give them
    parsed = read_catalogue(make_catalogue(tmp_path / "c.ecsv", n=5), tiny_spec())
    assert len(parsed.rows) == 5
    csv = make_catalogue(tmp_path / "c.csv", n=5)
    with pytest.raises(SurveyError, match="gives no unit.*add 'unit:'"):
        read_catalogue(csv, tiny_spec())
    spec = tiny_spec(
        position={"ra": {"column": "RA", "unit": "deg"}, "dec": {"column": "DEC", "unit": "deg"}},
        mass={"column": "M500", "unit": "1e14 Msun", "h_convention": "none"},
        luminosity={"name": "L_X", "kind": "luminosity", "column": "LX", "unit": "1e37 W",
                    "band_kev": [0.1, 2.4]},
    )  # fmt: skip
    rows = read_catalogue(csv, spec).rows
    assert [r.log10_m500c for r in rows] == pytest.approx([r.log10_m500c for r in parsed.rows])


def test_wrong_unit_is_caught_by_the_mass_range(tmp_path: Path) -> None:
    # masses written in Msun but the spec claims 1e14 Msun: log10 M ~ 28
    path = make_catalogue(tmp_path / "c.fits", M500=np.full(20, 1e14))
    with pytest.raises(SurveyError, match="wrong unit"):
        read_catalogue(path, tiny_spec())
