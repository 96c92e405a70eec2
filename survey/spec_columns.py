"""Column mappings of a survey spec: a column with its unit, masses, radii, observables, positions.

Shared by the catalogue and galaxy specs (:mod:`survey.specs`); strict pydantic models.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from astropy.table import Table
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from survey.delimited import TextOptions
from survey.errors import UnitParseError
from survey.files import read_table
from survey.text_tables import DEFAULT_MAX_CELL_BYTES
from survey.units import ParsedUnit, parse_unit

__all__ = [
    "ColumnRef",
    "MassSpec",
    "RadiusSpec",
    "ObservableSpec",
    "PositionSpec",
    "NameCoordinates",
]

TableFormat = Literal["auto", "fits", "csv", "ecsv", "votable", "text"]
ObservableKind = Literal[
    "luminosity", "flux", "richness", "sigma_v", "n_gal", "temperature", "other"
]
HConvention = Literal["unit", "h^-1", "h70^-1", "none"]
_MDEF = re.compile(r"^(\d+(\.\d+)?[cm]|vir)$")
_PHYSICAL: dict[str, str | None] = {
    "luminosity": "power",
    "flux": "energy flux",
    "richness": "dimensionless",
    "sigma_v": "speed",
    "n_gal": "dimensionless",
    "temperature": None,  # keV or K
    "other": None,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRef(_Strict):
    """One column holding a quantity, with its unit and errors.

    ``unit`` overrides the file's own unit string (``None`` = use the file's ``TUNIT``/ECSV unit,
    ``""`` = dimensionless). ``log10: true`` means the column holds ``log10(value / unit)``.
    Errors: ``error`` (symmetric) or ``error_lo``/``error_hi`` columns, in ``error_unit``
    (default: the value's unit) or in dex when ``error_log10`` is true.
    ``required: true`` rejects a row whose value is missing or invalid; ``false`` keeps the row
    and drops the value (both are recorded in the rejects table).
    """

    column: str
    unit: str | None = None
    log10: bool = False
    error: str | None = None
    error_lo: str | None = None
    error_hi: str | None = None
    error_unit: str | None = None
    error_log10: bool = False
    required: bool = True

    @model_validator(mode="after")
    def _errors_consistent(self) -> ColumnRef:
        if self.error and (self.error_lo or self.error_hi):
            raise ValueError("give either 'error' or 'error_lo'/'error_hi', not both")
        if bool(self.error_lo) != bool(self.error_hi):
            raise ValueError("'error_lo' and 'error_hi' go together")
        return self

    def columns(self) -> list[str]:
        """All file columns this reference reads."""
        return [c for c in (self.column, self.error, self.error_lo, self.error_hi) if c]


class MassSpec(ColumnRef):
    """A halo-mass column: definition (``500c``, ``200c``, ``200m``, ``vir``) and h-convention.

    ``h_convention``: ``unit`` takes it from the unit string (``Msun/h`` -> h^-1 Msun, plain
    ``Msun`` -> physical masses for the catalogue cosmology's h); ``h^-1`` / ``h70^-1`` / ``none``
    state it explicitly.
    """

    definition: str = "500c"
    h_convention: HConvention = "unit"

    @field_validator("definition")
    @classmethod
    def _mdef(cls, v: str) -> str:
        if not _MDEF.match(v):
            raise ValueError(f"mass definition {v!r}: use e.g. '500c', '200c', '200m' or 'vir'")
        return v


class RadiusSpec(ColumnRef):
    """An overdensity radius: a proper length (``Mpc``, ``kpc``) or an angle (``arcmin``)."""

    definition: str = "500c"
    h_convention: HConvention = "unit"


class ObservableSpec(ColumnRef):
    """A scalar mass proxy stored in ``observables`` under ``name`` (in ``store_unit``)."""

    name: str = Field(max_length=64)
    kind: ObservableKind = "other"
    band_kev: tuple[float, float] | None = None
    store_unit: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _band(self) -> ObservableSpec:
        if self.kind in ("luminosity", "flux") and self.band_kev is None:
            raise ValueError(f"observable {self.name!r}: a {self.kind} needs band_kev [lo, hi]")
        if self.band_kev is not None and not 0 < self.band_kev[0] < self.band_kev[1]:
            raise ValueError(f"observable {self.name!r}: band_kev must be 0 < lo < hi")
        return self


class NameCoordinates(_Strict):
    """Coordinates encoded in an IAU-style name, e.g. ``eFEDS J093712.9+031652``.

    ``pattern`` is a regular expression with named groups ``rah``, ``ram``, ``ras``, ``sign``,
    ``decd``, ``decm`` and optionally ``decs``. Name-encoded positions are truncated, not rounded
    (IAU convention), so they are good to ~0.1 s in RA and ~1 arcsec in Dec.
    """

    column: str
    pattern: str = (
        r"J(?P<rah>\d{2})(?P<ram>\d{2})(?P<ras>\d{2}(?:\.\d+)?)"
        r"(?P<sign>[+-])(?P<decd>\d{2})(?P<decm>\d{2})(?P<decs>\d{2}(?:\.\d+)?)?"
    )

    @field_validator("pattern")
    @classmethod
    def _groups(cls, v: str) -> str:
        try:
            groups = set(re.compile(v).groupindex)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        missing = {"rah", "ram", "ras", "sign", "decd", "decm"} - groups
        if missing:
            raise ValueError(f"pattern lacks named groups {sorted(missing)}")
        return v


class PositionSpec(_Strict):
    """Sky position: RA/Dec columns (angles) or coordinates parsed from a name column."""

    ra: ColumnRef | None = None
    dec: ColumnRef | None = None
    from_name: NameCoordinates | None = None
    frame: Literal["icrs", "fk5", "galactic"] = "icrs"

    @model_validator(mode="after")
    def _one_source(self) -> PositionSpec:
        has_cols = self.ra is not None and self.dec is not None
        if has_cols == (self.from_name is not None):
            raise ValueError("give either both 'ra' and 'dec' columns or 'from_name'")
        if (self.ra is None) != (self.dec is None):
            raise ValueError("'ra' and 'dec' go together")
        return self

    def columns(self) -> list[str]:
        """File columns read for positions."""
        if self.from_name is not None:
            return [self.from_name.column]
        return [*self.ra.columns(), *self.dec.columns()]  # type: ignore[union-attr]


class _TableSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    citation: str = ""
    format: TableFormat = "auto"
    hdu: int | str = 1
    max_cell_bytes: int = Field(
        default=DEFAULT_MAX_CELL_BYTES,
        gt=0,
        le=64 * 2**20,
        description="CSV/ECSV: a file with a longer cell is refused before reading (memory).",
    )
    unit_overrides: dict[str, str] = Field(
        default_factory=dict,
        description="{unit as the file writes it: astropy unit string}, checked before the "
        "built-in spellings (docs/specs.md, Units)",
    )
    delimiter: str | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="format 'text': the cell separator, e.g. '|' (NED), ',' or '\\t'",
    )
    header_line: int | None = Field(
        default=None,
        ge=1,
        description="format 'text': 1-based file line of the column names, as an editor shows "
        "it (default: the first line that is not blank or a comment)",
    )
    comment: str | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="format 'text': lines starting with this are skipped, e.g. '#'",
    )

    @model_validator(mode="after")
    def _text_options(self) -> _TableSpec:
        given = [k for k in ("delimiter", "header_line", "comment") if getattr(self, k) is not None]
        if self.format == "text" and self.delimiter is None:
            raise ValueError("format 'text' needs a 'delimiter' (e.g. '|' for NED output)")
        if given and self.format != "text":
            raise ValueError(
                f"{given} apply to 'format: text' only (delimited text tables); this spec has "
                f"format {self.format!r}"
            )
        return self

    def read_table(self, path: Path) -> Table:
        """Read ``path`` with this spec's format options (:func:`survey.files.read_table`)."""
        text = None
        if self.format == "text":
            assert self.delimiter is not None
            delim = self.delimiter.replace("\\t", "\t")
            text = TextOptions(delim, self.header_line, self.comment)
        return read_table(
            path, self.format, self.hdu, max_cell_bytes=self.max_cell_bytes, text=text
        )

    def unit(self, ref: ColumnRef, file_unit: str | None, physical: str | None) -> ParsedUnit:
        """Parse the unit of ``ref`` (spec unit first, then the file's), checking its type."""
        text = ref.unit if ref.unit is not None else file_unit
        if not text and physical not in (None, "dimensionless"):
            raise UnitParseError(
                f"spec {self.name!r} column {ref.column!r}: the file gives no unit and the spec "
                f"none; add 'unit:' (a {physical}) to the spec"
            )
        return parse_unit(
            text,
            overrides=self.unit_overrides,
            physical_type=physical,
            where=f"spec {self.name!r} column {ref.column!r}",
        )
