"""Unit strings from real tables, and the mapping specs."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import pytest

from survey.errors import SpecError, UnitParseError
from survey.specs import (
    CatalogueSpec,
    GalaxySpec,
    ImageSetSpec,
    detect_spec,
    load_any,
    load_spec,
    shipped_specs,
)
from survey.units import parse_unit


@pytest.mark.parametrize(
    ("text", "unit", "h_power"),
    [
        ("Msun/h", u.Msun, -1),
        ("h^-1 Msun", u.Msun, -1),
        ("Msun h-1", u.Msun, -1),
        ("10+14Msun", 1e14 * u.Msun, 0),
        ("10+37W", 1e37 * u.W, 0),
        ("1e+37 W", 1e37 * u.W, 0),
        ("ergs s**-1", u.erg / u.s, 0),
        ("ergs s**-1 cm**-2", u.erg / u.s / u.cm**2, 0),
        ("km / s", u.km / u.s, 0),
        ("", u.dimensionless_unscaled, 0),
    ],
)
def test_nonstandard_unit_strings(text: str, unit: u.UnitBase, h_power: int) -> None:
    parsed = parse_unit(text)
    assert parsed.h_power == h_power
    assert parsed.unit.to(unit) == pytest.approx(1.0)


def test_msun_per_h_is_little_h_not_per_hour() -> None:
    # astropy alone reads 'Msun/h' as solar masses per hour
    assert u.Unit("Msun/h").physical_type != "mass"
    parsed = parse_unit("Msun/h", physical_type="mass")
    assert parsed.unit.physical_type == "mass"
    # 1e14 Msun/h with h = 0.7 is 1e14 h^-1 Msun: factor 1 to h^-1 Msun, 1/0.7 to Msun
    assert parsed.to_h_inverse(0.7) == pytest.approx(1.0)
    assert parse_unit("Msun").to_h_inverse(0.7) == pytest.approx(0.7)
    assert parse_unit("Msun h70^-1").to_h_inverse(0.7) == pytest.approx(0.7)


def test_wrong_physical_type_is_refused() -> None:
    with pytest.raises(UnitParseError, match="expected a mass"):
        parse_unit("km/s", physical_type="mass", where="spec 'x' column 'M'")
    with pytest.raises(UnitParseError, match="cannot be parsed"):
        parse_unit("furlongs per fortnight")


def test_shipped_specs_load_and_name_their_columns() -> None:
    names = set(shipped_specs())
    assert {"mcxc", "efeds", "spiders_codex"} <= names
    mcxc = load_spec("mcxc")
    assert mcxc.mass is not None and mcxc.mass.definition == "500c"
    assert mcxc.cosmology.h == pytest.approx(0.7)
    assert "Piffaretti" in mcxc.citation
    assert load_spec("efeds").position.from_name is not None


def test_unknown_spec_lists_the_shipped_ones() -> None:
    with pytest.raises(SpecError, match="choose one of .*mcxc"):
        load_spec("nosuchspec")


def test_invalid_spec_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: catalogue\nname: x\nposition: {ra: {column: RA}}\nredshift: {column: z}\n"
        "mass: {column: M, definition: 500x}\n"
    )
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    msg = str(err.value)
    assert "bad.yaml" in msg and "position" in msg and "500x" in msg


def test_spec_units_are_checked_at_load_time() -> None:
    spec = CatalogueSpec.model_validate(
        {"name": "t", "position": {"ra": {"column": "RA"}, "dec": {"column": "DEC"}},
         "redshift": {"column": "Z"}, "mass": {"column": "M", "unit": "km/s"}}
    )  # fmt: skip
    with pytest.raises(UnitParseError, match="expected a mass"):
        spec.unit(spec.mass, None, "mass")  # type: ignore[arg-type]


def test_detect_spec_by_columns() -> None:
    cols = load_spec("spiders_codex").required_columns()
    assert detect_spec(cols + ["EXTRA"]).name == "spiders_codex"
    with pytest.raises(SpecError, match="no shipped spec fits"):
        detect_spec(["a", "b"], file="x.fits")


def test_galaxy_spec_guess_and_load_any(tmp_path: Path) -> None:
    g = GalaxySpec.guess(["RAdeg", "DEdeg", "cz", "mag"])
    assert g.velocity is not None and g.velocity.column == "cz" and g.redshift is None
    with pytest.raises(SpecError, match="cannot guess"):
        GalaxySpec.guess(["x", "y"])
    p = tmp_path / "set.yaml"
    p.write_text(
        "kind: image_set\ninstrument: X\ncluster: {name: A1}\n"
        "bands: [{band_kev: [0.5, 2.0], counts: c.fits, exposure_s: 1000}]\n"
    )
    spec = load_any(p)
    assert isinstance(spec, ImageSetSpec) and spec.files() == ["c.fits"]


def test_survey_package_is_pure() -> None:
    """survey imports no database, Prefect or service code."""
    import subprocess
    import sys

    code = (
        "import sys, survey, survey.responses\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('db', 'services', 'sqlalchemy', 'prefect', 'celery')]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
