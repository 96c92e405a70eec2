"""Plausible ranges (issue 15 bug 9b): an implausible value is a reject, the rest of the file lands.

The ranges live in :mod:`survey.plausibility` and are checked on physical quantities after unit
and little-h conversion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db import tables as t
from services.jobs.ingest_catalogues import ingest_catalogue_file
from survey.catalogues import read_catalogue
from survey.plausibility import M500C_MSUN, REDSHIFT
from tests.survey.conftest import make_catalogue, tiny_spec, write_table


def _skipped(parsed) -> dict[int, tuple[str | None, str | None, str]]:
    return {r.row: (r.column, r.value, r.reason) for r in parsed.rejects if r.row_skipped}


def test_redshift_and_m500_outside_the_plausible_ranges_are_rejected_rows(tmp_path: Path) -> None:
    z = np.full(20, 0.3)
    z[3] = 19.9
    m = np.full(20, 3.0)  # 3e14 Msun (the file's unit is 1e14 Msun, physical)
    m[5] = 300.0  # 3e16 Msun
    m[7] = 0.001  # 1e11 Msun
    path = make_catalogue(tmp_path / "wild.fits", Z=z, M500=m)
    parsed = read_catalogue(path, tiny_spec("wild"))
    skipped = _skipped(parsed)
    assert sorted(skipped) == [4, 6, 8]  # 1-based data rows
    assert skipped[4][:2] == ("Z", "19.9") and "0 < redshift <= 3" in skipped[4][2]
    assert skipped[6][:2] == ("M500", "300.0") and "M500c <= 5e+15 Msun" in skipped[6][2]
    assert skipped[8][0] == "M500" and "5e+11 <= M500c" in skipped[8][2]
    assert len(parsed.rows) == 17
    assert all(0 < r.redshift <= REDSHIFT.hi for r in parsed.rows)
    msg = next(r for r in parsed.rejects if r.row == 4).message("wild.fits")
    assert msg.startswith("wild.fits row 4 column 'Z': redshift outside the plausible range")


def test_mass_range_applies_to_the_physical_mass_after_little_h(tmp_path: Path) -> None:
    # values in h^-1 Msun with h = 0.7: 4e15 h^-1 Msun = 5.7e15 Msun (implausible),
    # 3e15 h^-1 Msun = 4.3e15 Msun (kept); 4e11 h^-1 Msun = 5.7e11 Msun (kept)
    m = np.full(20, 1e14)
    m[1], m[2], m[3] = 4e15, 3e15, 4e11
    path = make_catalogue(tmp_path / "h.fits", M500=m)
    spec = tiny_spec(mass={"column": "M500", "unit": "Msun/h", "h_convention": "unit"})
    parsed = read_catalogue(path, spec)
    assert sorted(_skipped(parsed)) == [2]
    kept = {r.row: r.log10_m500c for r in parsed.rows}
    assert kept[3] == pytest.approx(np.log10(3e15)) and kept[4] == pytest.approx(np.log10(4e11))
    assert 10 ** max(kept.values()) / 0.7 <= M500C_MSUN.hi


def test_m200c_above_the_range_never_reaches_the_conversion(tmp_path: Path) -> None:
    m = np.full(20, 5.0)
    m[4] = 1e6  # 1e20 Msun: screened before the NFW conversion
    m[6] = 60.0  # M200c 6e15 Msun -> M500c ~4.3e15 Msun: plausible after conversion
    spec = tiny_spec(mass={"column": "M500", "definition": "200c", "h_convention": "none"})
    parsed = read_catalogue(make_catalogue(tmp_path / "c.fits", M500=m), spec)
    skipped = _skipped(parsed)
    assert sorted(skipped) == [5] and "M200c" in skipped[5][2]
    kept = {r.row: r.log10_m500c for r in parsed.rows}
    assert 10 ** kept[7] / 0.7 < M500C_MSUN.hi


def test_a_spec_widens_the_redshift_range_with_max_redshift(tmp_path: Path) -> None:
    z = np.full(20, 0.3)
    z[0] = 4.2
    path = make_catalogue(tmp_path / "hiz.fits", Z=z)
    assert sorted(_skipped(read_catalogue(path, tiny_spec()))) == [1]
    wide = read_catalogue(path, tiny_spec(max_redshift=6.0))
    assert not wide.rejects and wide.rows[0].redshift == pytest.approx(4.2)


def test_implausible_radius_and_luminosity_are_dropped_values(tmp_path: Path) -> None:
    r = np.full(20, 1.0)  # proper Mpc, h = 0.7
    r[2] = 80.0  # a radius in kpc/10 or a comoving mistake: implausible
    lx = np.full(20, 1.0)  # 1e44 erg/s
    lx[4] = 1e5  # 1e49 erg/s
    path = write_table(
        tmp_path / "r.fits",
        {"ID": [f"C{i}" for i in range(20)], "RA": np.full(20, 10.0), "DEC": np.linspace(-5, 5, 20),
         "Z": np.full(20, 0.2), "M500": np.full(20, 3.0), "R500": r, "LX": lx},
        {"RA": "deg", "DEC": "deg", "M500": "10+14Msun", "R500": "Mpc", "LX": "10+37W"},
    )  # fmt: skip
    spec = tiny_spec(radius={"column": "R500", "h_convention": "none"})
    parsed = read_catalogue(path, spec)
    assert len(parsed.rows) == 20  # optional values are dropped, rows kept
    dropped = {(x.row, x.column): x.reason for x in parsed.rejects if not x.row_skipped}
    assert set(dropped) == {(3, "R500"), (5, "LX")}
    assert "R500c <= 5 Mpc" in dropped[3, "R500"] and "1e+47 erg / s" in dropped[5, "LX"]
    rows = {x.row: x for x in parsed.rows}
    assert rows[3].r500c_mpc_h == pytest.approx(rows[4].r500c_mpc_h, rel=0.5)  # derived from M
    assert not any(o.name == "L_X" for o in rows[5].observables)


def test_implausible_rows_are_recorded_and_never_overwrite_a_real_redshift(
    survey_engine: Engine, tmp_path: Path
) -> None:
    good = make_catalogue(tmp_path / "v1.fits", Z=np.full(20, 0.25))
    ingest_catalogue_file(good, tiny_spec("plaus"), engine=survey_engine)
    z = np.full(20, 0.25)
    z[3] = 19.9
    bad = make_catalogue(tmp_path / "v2.fits", Z=z)
    rep = ingest_catalogue_file(bad, tiny_spec("plaus"), engine=survey_engine)
    assert rep.status == "partial" and rep.n_rows == 19 and rep.n_rejected == 1
    with survey_engine.connect() as conn:
        rejects = conn.execute(
            sa.select(
                t.IngestFile.path,
                t.IngestReject.row_index,
                t.IngestReject.column_name,
                t.IngestReject.value,
                t.IngestReject.reason,
            )
            .join(t.IngestFile, t.IngestFile.id == t.IngestReject.file_id)
            .where(t.IngestReject.file_id == rep.file_id)
        ).all()
        z3 = conn.scalar(
            sa.select(t.Cluster.redshift)
            .join(t.Catalogue, t.Catalogue.id == t.Cluster.catalogue_id)
            .where(t.Catalogue.name == "plaus", t.Cluster.external_id == "CL0003")
        )
    ((file, row, column, value, reason),) = rejects
    assert file.endswith("v2.fits") and (row, column, value) == (4, "Z", "19.9")
    assert "plausible range" in reason
    assert z3 == pytest.approx(0.25)
