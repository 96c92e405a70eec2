"""What reading a cluster catalogue returns: kept rows, their observables, and rejects.

The dataclasses of :mod:`survey.catalogues` (pure, no database): the ingest job turns them into
rows of ``clusters``, ``observables`` and ``ingest_rejects``. Also the bookkeeping the reading
steps share (:class:`_Rows`: which rows are still valid, and the rejects so far) and the typed
read of one mapped column (``_values``), used by :mod:`survey.catalogues` and
:mod:`survey.catalogue_masses`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from survey.files import column_unit, float_column
from survey.specs import CatalogueSpec, ColumnRef
from survey.units import ParsedUnit

__all__ = ["Reject", "ObservableValue", "ClusterRow", "ParsedCatalogue"]


@dataclass(frozen=True)
class Reject:
    """A skipped row (``row_skipped``) or a dropped value of a kept row, and why.

    ``row`` is the 1-based data row (the first row after the header is 1, as TOPCAT and fv
    number FITS rows); ``line`` is, for text tables (CSV, ECSV, delimited text), the 1-based
    file line the row starts on, header and preamble lines counted: the number an editor shows.
    """

    row: int | None
    column: str | None
    value: str | None
    reason: str
    row_skipped: bool = True
    line: int | None = None

    def where(self) -> str:
        """``line 7 (row 4)`` for text tables, ``row 4`` otherwise ('' without a row)."""
        if self.row is None:
            return ""
        return f"line {self.line} (row {self.row})" if self.line is not None else f"row {self.row}"

    def message(self, file: str | Path) -> str:
        """One line naming the file, the line/row and the column."""
        where = f"{file}" + (f" {self.where()}" if self.row is not None else "")
        where += f" column {self.column!r}" if self.column else ""
        what = "row skipped" if self.row_skipped else "value dropped, row kept"
        return f"{where}: {self.reason} (value {self.value!r}); {what}"


@dataclass(frozen=True)
class ObservableValue:
    """A scalar observable of one cluster, in ``unit`` (astropy string).

    ``error`` is the symmetric 1-sigma error; with asymmetric errors it is the mean of
    ``error_lo`` and ``error_hi`` (both in ``unit``, both positive).
    """

    name: str
    value: float
    unit: str
    error: float | None = None
    note: str = ""
    error_lo: float | None = None
    error_hi: float | None = None


@dataclass
class ClusterRow:
    """One validated catalogue row, in the units of the ``clusters`` table (``row``: 1-based)."""

    row: int
    external_id: str
    name: str | None
    ra_deg: float
    dec_deg: float
    redshift: float
    log10_m500c: float | None = None
    log10_m500c_err: float | None = None
    log10_m500c_err_lo: float | None = None
    log10_m500c_err_hi: float | None = None
    r500c_mpc_h: float | None = None
    mass_note: str = ""
    observables: list[ObservableValue] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    """Every non-empty value of the spec's name columns, as ``(column, name)``, in spec order
    (``name`` is the first of them)."""


@dataclass
class ParsedCatalogue:
    """The outcome of reading one catalogue file with a spec."""

    spec: CatalogueSpec
    path: Path
    sha256: str
    size_bytes: int
    n_input: int
    rows: list[ClusterRow]
    rejects: list[Reject]
    notes: list[str] = field(default_factory=list)
    skipped_ids: list[str] = field(default_factory=list)
    """Identifiers of the skipped rows (where readable): rows the file holds but that failed a
    check. A re-ingest keeps what the database already has for them (unknown is not absent)."""

    @property
    def n_skipped(self) -> int:
        """Rows skipped entirely."""
        return len({r.row for r in self.rejects if r.row_skipped})


class _Rows:
    """Row validity bookkeeping shared by the steps below.

    ``lines``: per row, its file line (text tables), for :class:`Reject`.
    """

    def __init__(self, n: int, lines: np.ndarray | None = None) -> None:
        self.ok = np.ones(n, dtype=bool)
        self.rejects: list[Reject] = []
        self.lines = lines

    def label(self, i: int) -> str:
        """How a message names row ``i`` (0-based): ``line 7 (row 4)`` or ``row 4``."""
        return Reject(i + 1, None, None, "", line=self.line(i)).where()

    def line(self, i: int) -> int | None:
        """File line of row ``i`` (0-based), if known."""
        return None if self.lines is None else int(self.lines[i])

    def reject(
        self,
        bad: np.ndarray,
        column: str | None,
        values: np.ndarray,
        reason: str,
        *,
        skip: bool = True,
    ) -> None:
        for i in np.flatnonzero(bad & self.ok):
            self.rejects.append(
                Reject(int(i) + 1, column, _fmt(values[i]), reason, skip, self.line(int(i)))
            )
        if skip:
            self.ok &= ~bad


def _fmt(v: object) -> str:
    if isinstance(v, float | np.floating):
        return "nan" if np.isnan(v) else repr(float(v))
    return str(v)


def _values(
    table: Table, spec: CatalogueSpec, ref: ColumnRef, physical: str | None, path: Path
) -> tuple[np.ndarray, ParsedUnit]:
    unit = spec.unit(ref, column_unit(table, ref.column), physical)
    return float_column(table, ref.column, path=path), unit
