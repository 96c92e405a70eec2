"""Readers (issue 17): unit aliases, delimited text (NED), asymmetric errors, editor line numbers."""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest

from survey.catalogues import read_catalogue
from survey.errors import CatalogueReadError, UnitParseError
from survey.galaxies import C_KMS, read_galaxy_table
from survey.specs import CatalogueSpec, GalaxySpec
from survey.units import parse_unit
from tests.survey.conftest import make_catalogue, tiny_spec, write_table


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("Msol", u.Msun),
        ("Msun", u.Msun),
        ("10^14 Msol", 1e14 * u.Msun),
        ("1e14 Msun", 1e14 * u.Msun),
        ("1E14 Msol", 1e14 * u.Msun),
        ("10^{14} M_sun", 1e14 * u.Msun),
        ("10**14 Msol", 1e14 * u.Msun),
        ("1e44 erg/s", 1e44 * u.erg / u.s),
        ("10^44 erg/s", 1e44 * u.erg / u.s),
        ("10^44 erg s^-1", 1e44 * u.erg / u.s),
    ],
)
def test_catalogue_unit_spellings_parse(text: str, unit: u.UnitBase) -> None:
    parsed = parse_unit(text, physical_type=u.Unit(unit).physical_type)
    assert parsed.h_power == 0
    assert parsed.unit.to(unit) == pytest.approx(1.0)


def test_scaled_solar_mass_with_little_h() -> None:
    parsed = parse_unit("10^14 Msol/h", physical_type="mass")
    assert parsed.unit.to(u.Msun) == pytest.approx(1e14) and parsed.h_power == -1


def test_file_tunit_10_14_msol_is_read(tmp_path: Path) -> None:
    # the file's own TUNIT, as the issue reports it, with no unit in the spec
    m = np.full(20, 2.0)
    path = write_table(
        tmp_path / "c.fits",
        {"ID": [f"C{i}" for i in range(20)], "RA": np.full(20, 10.0), "DEC": np.zeros(20),
         "Z": np.full(20, 0.1), "M500": m},
        {"RA": "deg", "DEC": "deg", "M500": "10^14 Msol"},
    )  # fmt: skip
    spec = tiny_spec(luminosity=None)
    parsed = read_catalogue(path, spec)
    assert len(parsed.rows) == 20
    assert parsed.rows[0].log10_m500c == pytest.approx(math.log10(2e14 * 0.7))


def test_unknown_unit_error_names_the_field_and_the_fix(tmp_path: Path) -> None:
    path = make_catalogue(tmp_path / "c.fits")
    spec = tiny_spec(mass={"column": "M500", "unit": "10^14 Msolar", "h_convention": "none"})
    with pytest.raises(UnitParseError) as err:
        read_catalogue(path, spec)
    msg = str(err.value)
    assert "spec 'tiny' column 'M500'" in msg and "'10^14 Msolar'" in msg
    assert "unit_overrides" in msg and "1e14 solMass" in msg
    assert msg.endswith("(docs/specs.md, Units)")  # whole, not cut off
    assert "docs.astropy.org" not in msg  # astropy's advice is about astropy, not the spec
    # the fix the message names works
    fixed = tiny_spec(
        mass={"column": "M500", "unit": "10^14 Msolar", "h_convention": "none"},
        unit_overrides={"10^14 Msolar": "1e14 solMass"},
    )
    assert len(read_catalogue(path, fixed).rows) == 20


NED_MEMBERS = """\
                      NASA/IPAC EXTRAGALACTIC DATABASE
                  Query: objects near name "Coma Cluster"
Search radius: 60.0 arcmin; velocity constraint: 3000 to 11000 km/s
Date: Sun Nov 29 12:00:00 2026

No.|Object Name|RA|DEC|Type|Velocity|Redshift|Redshift Flag|Magnitude and Filter|Separation|References|Notes|Photometry Points|Positions|Redshift Points|Diameter Points|Associations
{rows}"""


def _ned_rows(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    v = 6925.0 + rng.normal(0, 1000.0, n)
    rows = []
    for i in range(n):
        ra, dec = 194.95 + rng.normal(0, 0.3), 27.98 + rng.normal(0, 0.3)
        vel = f"{v[i]:.0f}"
        z = f"{v[i] / C_KMS:.6f}"
        mag = f"{rng.uniform(14, 18):.1f}g" if i % 3 else ""  # empty cells, as NED ships them
        rows.append(
            f"{i + 1}|WISEA J{i:06d}+27{i:04d}|{ra:.5f}|{dec:.5f}|G|{vel}|{z}|SPEC|{mag}|"
            f"{rng.uniform(0, 60):.3f}|{i % 7}|0|{i % 5}|1|1|0|0"
        )
    return rows, v


def test_ned_bar_separated_member_table_reads_as_shipped(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows, v = _ned_rows(40, rng)
    cells = rows[9].split("|")
    cells[5] = ""  # a galaxy without a velocity: a reject on the line the editor shows
    rows[9] = "|".join(cells)
    path = tmp_path / "ned_coma.txt"
    path.write_text(NED_MEMBERS.format(rows="\n".join(rows)) + "\n")
    spec = GalaxySpec.model_validate(
        {
            "name": "ned-coma",
            "format": "text",
            "delimiter": "|",
            "header_line": 6,
            "ra": {"column": "RA", "unit": "deg"},
            "dec": {"column": "DEC", "unit": "deg"},
            "velocity": {"column": "Velocity", "unit": "km/s"},
        }
    )
    ra, dec, z, rejects = read_galaxy_table(path, spec)
    assert len(ra) == 39
    assert z == pytest.approx(np.delete(np.round(v), 9) / C_KMS)
    (rej,) = rejects
    # row 10 of the data, on line 16 of the file (6 preamble/header lines)
    assert (rej.row, rej.line, rej.column) == (10, 16, "Velocity")
    assert path.read_text().splitlines()[rej.line - 1].startswith("10|")
    assert "line 16 (row 10)" in rej.message(path.name)


def test_text_options_are_checked_at_spec_load() -> None:
    base = {"name": "g", "ra": {"column": "RA"}, "dec": {"column": "DEC"},
            "redshift": {"column": "z"}}  # fmt: skip
    with pytest.raises(ValueError, match="needs a 'delimiter'"):
        GalaxySpec.model_validate({**base, "format": "text"})
    with pytest.raises(ValueError, match="apply to 'format: text' only"):
        GalaxySpec.model_validate({**base, "format": "csv", "header_line": 3})


def test_text_reader_names_the_line_of_a_malformed_row(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("# comment\nRA|DEC|z\n10|1|0.1\n\n# note\n11|2\n")
    spec = GalaxySpec.model_validate(
        {
            "name": "g",
            "format": "text",
            "delimiter": "|",
            "comment": "#",
            "ra": {"column": "RA", "unit": "deg"},
            "dec": {"column": "DEC", "unit": "deg"},
            "redshift": {"column": "z"},
        }  # fmt: skip
    )
    with pytest.raises(
        CatalogueReadError, match=r"t\.txt: line 6 has 2 cells, the header \(line 2\)"
    ):
        read_galaxy_table(path, spec)
    bad_header = spec.model_copy(update={"header_line": 4})
    with pytest.raises(CatalogueReadError, match="header_line 4 is blank or a comment"):
        read_galaxy_table(path, bad_header)


def test_ned_style_catalogue_with_text_spec_from_yaml(tmp_path: Path) -> None:
    text = (
        "NED query results\n"
        "Generated for a test\n"
        "Name|RA|DEC|z|M500|M500_lo|M500_hi\n"
        "A|10.0|1.0|0.1|2.0|0.2|0.3\n"
        "B|11.0|2.0|0.2|3.0||0.4\n"  # one-sided: a reject, not a one-sided error
        "C|12.0|3.0|0.3|4.0|0.5|0.5\n"
    )
    path = tmp_path / "cat.txt"
    path.write_text(text)
    spec = CatalogueSpec.model_validate(
        {
            "name": "nedcat", "format": "text", "delimiter": "|", "header_line": 3,
            "id_column": "Name", "position": {"ra": {"column": "RA", "unit": "deg"},
                                              "dec": {"column": "DEC", "unit": "deg"}},
            "redshift": {"column": "z", "unit": ""},
            "cosmology": {"name": "flat70", "H0": 70.0, "Om0": 0.3},
            "mass": {"column": "M500", "unit": "10^14 Msol", "h_convention": "none",
                     "error_lo": "M500_lo", "error_hi": "M500_hi", "required": False},
            "max_reject_fraction": 0.9,
        }
    )  # fmt: skip
    parsed = read_catalogue(path, spec)
    rows = {r.external_id: r for r in parsed.rows}
    assert set(rows) == {"A", "B", "C"}
    a = rows["A"]
    lo, hi = math.log10(2.0 / 1.8), math.log10(2.3 / 2.0)
    assert a.log10_m500c_err_lo == pytest.approx(lo) and a.log10_m500c_err_hi == pytest.approx(hi)
    assert a.log10_m500c_err == pytest.approx(0.5 * (lo + hi))
    b = rows["B"]
    assert b.log10_m500c is None and b.log10_m500c_err_hi is None  # not stored one-sided
    (rej,) = parsed.rejects
    assert (rej.row, rej.line, rej.column) == (2, 5, "M500_lo/M500_hi")
    assert "only the upper error" in rej.reason and not rej.row_skipped


def test_asymmetric_mass_errors_one_sided_or_inconsistent_are_rejects(tmp_path: Path) -> None:
    n = 20
    lo, hi = np.full(n, 0.3), np.full(n, 0.5)
    lo[2] = np.nan  # one-sided
    hi[3] = -0.1  # negative
    lo[4] = 5.0  # lower error larger than the mass (2e14): no log
    path = make_catalogue(tmp_path / "c.fits", n=n, M500=np.full(n, 2.0), MLO=lo, MHI=hi)
    spec = tiny_spec(
        mass={"column": "M500", "h_convention": "none", "error_lo": "MLO", "error_hi": "MHI",
              "error_unit": "10^14 Msun"}
    )  # fmt: skip
    parsed = read_catalogue(path, spec)
    skipped = {r.row: r.reason for r in parsed.rejects if r.row_skipped}
    assert set(skipped) == {3, 4, 5}  # required mass: the row goes, and says why
    assert "only the upper error" in skipped[3] and "only the lower error" in skipped[4]
    assert "only the upper error" in skipped[5]
    kept = parsed.rows[0]
    assert kept.log10_m500c_err_lo == pytest.approx(math.log10(2.0 / 1.7))
    assert kept.log10_m500c_err_hi == pytest.approx(math.log10(2.5 / 2.0))


def test_asymmetric_observable_errors_are_mapped_and_checked(tmp_path: Path) -> None:
    n = 20
    lx = np.full(n, 3.0)
    elo, ehi = np.full(n, 0.2), np.full(n, 0.4)
    ehi[6] = np.nan  # one-sided: the value is dropped (optional), with a reject
    path = make_catalogue(tmp_path / "c.fits", n=n, LX=lx, LLO=elo, LHI=ehi)
    spec = tiny_spec(
        luminosity={"name": "L_X", "kind": "luminosity", "column": "LX", "store_unit": "erg / s",
                    "band_kev": [0.1, 2.4], "required": False, "error_lo": "LLO",
                    "error_hi": "LHI", "error_unit": "1e44 erg/s"}
    )  # fmt: skip
    parsed = read_catalogue(path, spec)
    assert len(parsed.rows) == n
    (rej,) = parsed.rejects
    assert rej.row == 7 and not rej.row_skipped and "only the lower error" in rej.reason
    obs = {r.row: r.observables for r in parsed.rows}
    assert obs[7] == []
    (o,) = obs[1]
    assert o.value == pytest.approx(3e44)
    assert o.error_lo == pytest.approx(0.2e44) and o.error_hi == pytest.approx(0.4e44)
    assert o.error == pytest.approx(0.3e44)


def test_symmetric_observable_error_nan_with_value_is_a_reject(tmp_path: Path) -> None:
    n = 20
    err = np.full(n, 0.1)
    err[0] = np.nan
    path = make_catalogue(tmp_path / "c.fits", n=n, LERR=err)
    spec = tiny_spec(
        luminosity={"name": "L_X", "kind": "luminosity", "column": "LX", "store_unit": "erg / s",
                    "band_kev": [0.1, 2.4], "required": False, "error": "LERR",
                    "error_unit": "1e44 erg/s"}
    )  # fmt: skip
    parsed = read_catalogue(path, spec)
    (rej,) = parsed.rejects
    assert rej.row == 1 and rej.column == "LERR" and "NaN" in rej.reason
    assert parsed.rows[1].observables[0].error == pytest.approx(0.1e44)


def test_csv_reject_lines_match_an_editor(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "ID,RA,DEC,Z,M500\n"
        "A,10,1,0.1,2.0\n"
        "\n"  # a blank line: not a row, but a line
        '"B\nsecond line",11,2,0.2,3.0\n'  # a quoted newline: one row over two lines
        "C,12,3,0.3,-1\n" + "".join(f"D{i},13,4,0.4,2.0\n" for i in range(10))
    )
    spec = tiny_spec(luminosity=None, position={"ra": {"column": "RA", "unit": "deg"},
                                                "dec": {"column": "DEC", "unit": "deg"}},
                     mass={"column": "M500", "unit": "1e14 Msun", "h_convention": "none"})  # fmt: skip
    parsed = read_catalogue(path, spec)
    (rej,) = parsed.rejects
    assert (rej.row, rej.line) == (3, 6)
    assert path.read_text().splitlines()[rej.line - 1].startswith("C,")
    assert "c.csv line 6 (row 3) column 'M500'" in rej.message(path.name)


def test_error_columns_where_errors_are_not_stored_are_refused_at_load() -> None:
    with pytest.raises(ValueError, match=r"\['radius'\]: errors are read for masses and"):
        tiny_spec(radius={"column": "R500", "error": "R500_ERR"})
    with pytest.raises(ValueError, match=r"\['redshift'\]"):
        tiny_spec(redshift={"column": "Z", "unit": "", "error_lo": "ZL", "error_hi": "ZH"})
    with pytest.raises(ValueError, match=r"\['velocity'\]"):
        GalaxySpec.model_validate(
            {
                "name": "g",
                "ra": {"column": "RA"},
                "dec": {"column": "DEC"},
                "velocity": {"column": "cz", "error": "ecz"},
            }  # fmt: skip
        )
