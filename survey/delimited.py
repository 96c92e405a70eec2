"""Delimited text tables as services like NED ship them: a preamble, a header line, then rows.

NED's "ASCII bar separated" output (near-name / near-position searches, cluster member
queries) starts with free-text lines (the query, the date, column notes), puts the column
names on a later line, separated by ``|``, and leaves a missing value as an empty cell::

    Query: near name "Coma Cluster", radius 60 arcmin
    ...
    No.|Object Name|RA(deg)|DEC(deg)|Type|Velocity|Redshift|Redshift Flag|...
    1|WISEA J125942.30+275744.6|194.92633|27.96242|G|7227|0.024108|SPEC|...

astropy's readers count ``header_start`` / ``data_start`` without blank and comment lines, so
a line number an editor shows cannot be given to them; this reader takes the 1-based file line
of the header (``header_line``) as the file shows it, reads every later line as a row (blank
lines and lines starting with ``comment`` skipped), and records each row's file line for the
reject messages. A column whose non-empty cells all parse as numbers becomes float64 (empty
cells masked); any other column stays text. Cells are stripped of surrounding spaces.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import MaskedColumn, Table

from survey.errors import CatalogueReadError

__all__ = ["TextOptions", "read_delimited"]


@dataclass(frozen=True)
class TextOptions:
    """How to split a delimited text table.

    Attributes
    ----------
    delimiter : str
        Cell separator, e.g. ``"|"`` (NED), ``","`` or a tab.
    header_line : int or None
        1-based file line holding the column names, as an editor shows it (preamble lines
        counted); ``None``: the first line that is neither blank nor a comment.
    comment : str or None
        Lines starting with this (after leading spaces) are skipped, e.g. ``"#"``.
    """

    delimiter: str = "|"
    header_line: int | None = None
    comment: str | None = None


def _lines(path: Path, max_bytes: int) -> list[str]:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except (OSError, EOFError) as exc:
        raise CatalogueReadError(f"{path}: cannot read ({exc})") from exc
    if len(raw) > max_bytes:
        raise CatalogueReadError(
            f"{path}: more than max_text_bytes = {max_bytes / 2**20:.0f} MiB of text; refused"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CatalogueReadError(
            f"{path}: line {line} is not UTF-8 text (latin-1? re-encode the file as UTF-8)"
        ) from exc
    return text.splitlines()


def _split(line: str, delim: str, strip_trailing: bool) -> list[str]:
    if strip_trailing and line.rstrip().endswith(delim):
        line = line.rstrip()[: -len(delim)]
    return [c.strip() for c in line.split(delim)]


def _column(name: str, cells: list[str]) -> MaskedColumn:
    empty = np.array([c == "" for c in cells], dtype=bool)
    try:
        values = np.array([float(c) if c else np.nan for c in cells], dtype=np.float64)
    except ValueError:
        return MaskedColumn(np.array(cells, dtype=str), name=name, mask=empty)
    return MaskedColumn(values, name=name, mask=empty)


def read_delimited(
    path: Path,
    options: TextOptions,
    *,
    max_cell_bytes: int,
    max_text_bytes: int,
) -> Table:
    """Read a delimited text table; ``table.meta['row_lines']`` holds each row's file line.

    Parameters
    ----------
    path : Path
        The file (plain or gzip).
    options : TextOptions
        Delimiter, header line and comment prefix.
    max_cell_bytes, max_text_bytes : int
        Longest cell [bytes], and the most memory the text columns may take (rows x widest
        cell x 4 bytes, as for CSV).

    Raises
    ------
    CatalogueReadError
        No header, a header line past the end or blank, repeated or empty column names, a
        row with another number of cells than the header, a cell too long; every message
        names the file and the line.
    """
    path = Path(path)
    lines = _lines(path, max_text_bytes)
    delim = options.delimiter
    if not delim:
        raise CatalogueReadError(f"{path}: 'delimiter' must not be empty")

    def skipped(text: str) -> bool:
        s = text.strip()
        return not s or (options.comment is not None and s.startswith(options.comment))

    if options.header_line is None:
        header_at = next((i for i, t in enumerate(lines) if not skipped(t)), None)
        if header_at is None:
            raise CatalogueReadError(f"{path}: no header line (the file is blank or comments)")
    else:
        header_at = options.header_line - 1
        if header_at >= len(lines) or skipped(lines[header_at]):
            what = "past the end" if header_at >= len(lines) else "blank or a comment"
            raise CatalogueReadError(
                f"{path}: header_line {options.header_line} is {what} (the file has "
                f"{len(lines)} lines); set header_line to the line of the column names as an "
                "editor shows it"
            )
    header_text = lines[header_at]
    if delim not in header_text:
        raise CatalogueReadError(
            f"{path}: line {header_at + 1} (header) has no {delim!r}; wrong delimiter or "
            "header_line?"
        )
    trailing = header_text.rstrip().endswith(delim)
    names = _split(header_text, delim, trailing)
    blank = [i + 1 for i, n in enumerate(names) if not n]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if blank or dupes:
        raise CatalogueReadError(
            f"{path}: line {header_at + 1} (header): "
            + (f"empty column name(s) at position(s) {blank}" if blank else "")
            + ("; " if blank and dupes else "")
            + (f"repeated column name(s) {dupes}" if dupes else "")
        )
    rows: list[list[str]] = []
    row_lines: list[int] = []
    widest = 0
    for i in range(header_at + 1, len(lines)):
        text = lines[i]
        if skipped(text):
            continue
        cells = _split(text, delim, trailing)
        if len(cells) != len(names):
            raise CatalogueReadError(
                f"{path}: line {i + 1} has {len(cells)} cells, the header (line "
                f"{header_at + 1}) has {len(names)}; a {delim!r} inside a value, or a footer?"
            )
        longest = max(len(c.encode()) for c in cells)
        if longest > max_cell_bytes:
            raise CatalogueReadError(
                f"{path}: line {i + 1}: a cell longer than {max_cell_bytes} bytes "
                "(max_cell_bytes); raise it in the spec if it is meant"
            )
        widest = max(widest, longest)
        rows.append(cells)
        row_lines.append(i + 1)
    if not rows:
        raise CatalogueReadError(f"{path}: the table has no rows after line {header_at + 1}")
    if len(rows) * widest * 4 * len(names) > max_text_bytes:
        raise CatalogueReadError(
            f"{path}: {len(rows)} rows x {len(names)} columns x {widest} bytes would exceed "
            f"max_text_bytes = {max_text_bytes / 2**20:.0f} MiB"
        )
    table = Table([_column(n, [r[k] for r in rows]) for k, n in enumerate(names)])
    table.meta["row_lines"] = np.asarray(row_lines, dtype=np.int64)
    return table
