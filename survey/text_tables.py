"""Bounded-memory guard for text tables (CSV, ECSV) before astropy reads them.

astropy's ASCII readers store a text column as a fixed-width unicode array: rows x the longest
cell x 4 bytes. One 200 KB cell in a 1,000-row CSV costs ~1 GB, one 50 MB cell ~17 GB. So before
``Table.read`` the file is scanned as a stream (fixed-size chunks, never a whole line or cell in
memory) and refused with an error naming the file, the row and the column when

* a cell is longer than ``max_cell_bytes`` (default 64 KiB; a catalogue spec may raise it), or
* a wide column (cells over 64 bytes: text, not numbers) would cost astropy more than
  ``max_text_bytes`` (default 1 GiB): rows x its widest cell x 4.

The scanner follows RFC 4180 quoting (a doubled quote inside a quoted cell, newlines inside
quotes), skips blank lines and, in ECSV, ``#`` comment lines (the YAML header, whose
``delimiter`` it reads; astropy's CSV reader has no comments), and treats a space
delimiter as a run of spaces, as astropy does.
"""

from __future__ import annotations

import gzip
import re
from array import array
from pathlib import Path
from typing import BinaryIO

import numpy as np

from survey.errors import CatalogueReadError

__all__ = ["DEFAULT_MAX_CELL_BYTES", "DEFAULT_MAX_TEXT_BYTES", "check_text_table"]

DEFAULT_MAX_CELL_BYTES = 64 * 1024
DEFAULT_MAX_TEXT_BYTES = 1 << 30
_WIDE_CELL = 64  # a column whose widest cell is longer than this is text, not numbers
_CHUNK = 1 << 20
_ECSV_DELIMITER = re.compile(rb"^#\s*delimiter\s*:\s*['\"]?(,|\s)['\"]?\s*$")


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def _ecsv_delimiter(path: Path) -> bytes:
    """Return the ``delimiter`` of an ECSV header (default a space), reading its header only."""
    with _open(path) as fh:
        while line := fh.readline(4096):
            if not line.startswith(b"#"):
                break
            m = _ECSV_DELIMITER.match(line.rstrip(b"\r\n"))
            if m:
                return b"," if m.group(1) == b"," else b" "
    return b" "


class _Scan:
    """Streaming RFC 4180 scanner: cell lengths per row and column, in bounded memory."""

    def __init__(
        self, path: Path, delimiter: bytes, max_cell: int, *, comments: bool = False
    ) -> None:
        self.path = path
        self.delim = delimiter
        self.spaces = delimiter == b" "
        self.max_cell = max_cell
        self.comments = comments  # '#' lines are comments (ECSV), or data (CSV, as astropy)
        hash_ = b"#" if comments else b""
        self.special = re.compile(b'["\\n\\r' + hash_ + re.escape(delimiter) + b"]")
        self.line = 1  # 1-based physical line
        self.row = -1  # -1: header; then 0-based data rows (shown 1-based in messages)
        self.start_line = 1  # line on which the current row starts
        self.row_lines = array("q")  # per data row: the line it starts on
        self.col = 0
        self.cell = 0  # bytes in the current cell
        self.quoted = False  # inside a quoted cell
        self.quote_pending = False  # saw '"' inside quotes: closing, or the first of '""'
        self.comment = False
        self.line_empty = True  # nothing but a comment or blank so far on this line
        self.row_started = False
        self.names: list[str] = []
        self.header_cell = bytearray()
        self.widest: list[tuple[int, int]] = []  # per column: (bytes, data row)

    def column_name(self, col: int) -> str:
        return self.names[col] if col < len(self.names) else f"#{col + 1}"

    def _where(self, col: int | None = None) -> str:
        row = "the header" if self.row < 0 else f"row {self.row + 1}"
        c = self.col if col is None else col
        return f"{self.path}: line {self.line} ({row}), column {self.column_name(c)!r}"

    def _grow(self, n: int, data: bytes = b"") -> None:
        self.cell += n
        self.row_started = True
        if self.row < 0 and data:
            self.header_cell += data
        if self.cell > self.max_cell:
            raise CatalogueReadError(
                f"{self._where()}: a cell longer than {self.max_cell} bytes "
                f"(max_cell_bytes); refused before reading, since astropy would hold "
                f"rows x this length x 4 bytes. Raise max_cell_bytes in the spec if it is meant."
            )

    def _end_cell(self) -> None:
        if self.row < 0:
            self.names.append(self.header_cell.decode("utf-8", "backslashreplace").strip())
            self.header_cell = bytearray()
        else:
            while len(self.widest) <= self.col:
                self.widest.append((0, 0))
            if self.cell > self.widest[self.col][0]:
                self.widest[self.col] = (self.cell, self.row)
        self.col += 1
        self.cell = 0

    def _end_line(self) -> None:
        if self.row_started or self.col:
            self._end_cell()
            if self.row >= 0:
                self.row_lines.append(self.start_line)
            self.row += 1
        self.start_line = self.line
        self.col, self.cell = 0, 0
        self.row_started = False
        self.line_empty = True

    def _close_quote(self) -> None:
        if self.quote_pending:
            self.quoted = self.quote_pending = False

    def feed(self, chunk: bytes) -> None:
        """Scan the next bytes: whole lines without quotes or comments with numpy, else exactly."""
        if self.quoted or self.comment or self.row < 0 or self.row_started or self.col:
            first = chunk.find(b"\n") + 1  # finish the current line exactly
            if first == 0:
                self._exact(chunk)
                return
            self._exact(chunk[:first])
            chunk = chunk[first:]
        last = chunk.rfind(b"\n") + 1
        region, tail = chunk[:last], chunk[last:]
        plain = b'"' not in region and not (self.comments and b"#" in region)
        if region and not self.quoted and plain:
            if not self._fast(region):
                self._exact(region)
        else:
            self._exact(region)
        self._exact(tail)

    def _fast(self, region: bytes) -> bool:
        """Cell widths of whole, quote-free lines; False (nothing done) if a cell is too long."""
        a = np.frombuffer(region, dtype=np.uint8)
        nl = a == 10
        if self.spaces:
            sep = nl | (a == 32) | (a == 9) | (a == 13)
            edges = np.diff(np.concatenate(([0], (~sep).view(np.int8), [0])))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        else:
            ends = np.flatnonzero(nl | (a == self.delim[0]))
            starts = np.concatenate(([0], ends[:-1] + 1))
        lengths = ends - starts
        if not self.spaces:  # '\r\n' line ends: the '\r' is no part of the cell
            cr = (lengths > 0) & nl[ends] & (a[np.maximum(ends - 1, 0)] == 13)
            lengths = lengths - cr
        if lengths.size and int(lengths.max()) > self.max_cell:
            return False
        n_lines = int(nl.sum())
        line_of = np.cumsum(nl)[starts] - nl[starts]  # line of each cell within the region
        first_cell = np.searchsorted(line_of, line_of, side="left")
        col = np.arange(line_of.size) - first_cell
        if not self.spaces:  # a blank line is one empty cell: not a row
            per_line = np.bincount(line_of, minlength=n_lines)
            blank = (per_line == 1) & (
                np.bincount(line_of, weights=lengths, minlength=n_lines) == 0
            )
            keep = ~blank[line_of]
            line_of, col, lengths = line_of[keep], col[keep], lengths[keep]
        else:
            blank = np.bincount(line_of, minlength=n_lines) == 0
        row_of_line = self.row + np.cumsum(~blank) - 1
        if lengths.size:
            order = np.lexsort((-lengths, col))
            first = order[np.r_[True, col[order][1:] != col[order][:-1]]]
            for c, w, r in zip(
                col[first], lengths[first], row_of_line[line_of[first]], strict=True
            ):
                while len(self.widest) <= c:
                    self.widest.append((0, 0))
                if w > self.widest[c][0]:
                    self.widest[c] = (int(w), int(r))
        self.row_lines.frombytes((np.flatnonzero(~blank) + self.line).astype(np.int64).tobytes())
        self.row += int((~blank).sum())
        self.line += n_lines
        self.start_line = self.line
        return True

    def _exact(self, chunk: bytes) -> None:
        pos = 0
        for m in self.special.finditer(chunk):
            i = m.start()
            if i > pos:
                self._ordinary(chunk[pos:i])
            self._special(chunk[i : i + 1])
            pos = i + 1
        if pos < len(chunk):
            self._ordinary(chunk[pos:])

    def _ordinary(self, data: bytes) -> None:
        if self.comment:
            return
        self._close_quote()
        if self.spaces and not self.quoted and not self.row_started:
            data = data.lstrip(b" \t")
            if not data:
                return
        self.line_empty = False
        self._grow(len(data), data)

    def _special(self, c: bytes) -> None:
        if c == b"\n":
            self.line += 1
            if self.comment:
                self.comment = False
                self.start_line = self.line
                return
            if self.quoted and not self.quote_pending:
                self._grow(1, c)
                return
            self._close_quote()
            self._end_line()
            return
        if self.comment:
            return
        if c == b"\r":
            if self.quoted and not self.quote_pending:
                self._grow(1, c)
            return
        if c == b'"':
            if self.quoted:
                if self.quote_pending:  # '""' inside quotes: a literal quote
                    self.quote_pending = False
                    self._grow(1, c)
                else:
                    self.quote_pending = True
            elif self.cell == 0:
                self.quoted = True
                self.row_started = True
                self.line_empty = False
            else:
                self._grow(1, c)
            return
        if c == b"#" and self.line_empty and not self.quoted and self.col == 0:
            self.comment = True
            return
        if c == self.delim:
            if self.quoted and not self.quote_pending:
                self._grow(1, c)
                return
            was_quoted = self.quote_pending
            self._close_quote()
            if self.spaces and self.cell == 0 and not was_quoted:
                return  # a run of spaces is one delimiter
            self.line_empty = False
            self.row_started = True
            self._end_cell()
            return
        self._ordinary(c)  # '#' inside a line

    def finish(self, max_text: int) -> None:
        self._close_quote()
        self._end_line()
        n = max(self.row, 0)
        cost = sum(n * width * 4 for width, _ in self.widest if width > _WIDE_CELL)
        if cost > max_text:
            col = max(range(len(self.widest)), key=lambda k: self.widest[k][0])
            width, row = self.widest[col]
            raise CatalogueReadError(
                f"{self.path}: row {row + 1}, column {self.column_name(col)!r}: its {width}-byte cell "
                f"would make astropy hold {n} rows x {width} bytes x 4 for that column "
                f"(~{cost / 2**20:.0f} MiB of text in all, more than max_text_bytes = "
                f"{max_text / 2**20:.0f} MiB); refused before reading"
            )


def check_text_table(
    path: Path,
    fmt: str,
    *,
    max_cell_bytes: int = DEFAULT_MAX_CELL_BYTES,
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
) -> np.ndarray:
    """Refuse a CSV/ECSV file that astropy could not read in bounded memory.

    Parameters
    ----------
    path : Path
        The file (plain or gzip).
    fmt : {'csv', 'ecsv'}
        The format (the ECSV header gives the delimiter).
    max_cell_bytes : int
        Longest cell allowed [bytes].
    max_text_bytes : int
        Most memory astropy may use for the wide (text) columns [bytes].

    Returns
    -------
    ndarray of int
        Per data row (astropy's row order), the 1-based file line it starts on: what an editor
        shows, for reject messages.

    Raises
    ------
    CatalogueReadError
        A cell is too long, or the wide columns too costly; the message names the file, the line,
        the row (1-based data row) and the column.
    """
    delimiter = _ecsv_delimiter(path) if fmt == "ecsv" else b","
    scan = _Scan(path, delimiter, max_cell_bytes, comments=fmt == "ecsv")
    try:
        with _open(path) as fh:
            while chunk := fh.read(_CHUNK):
                scan.feed(chunk)
    except (OSError, EOFError) as exc:
        raise CatalogueReadError(f"{path}: cannot read ({exc})") from exc
    scan.finish(max_text_bytes)
    lines = (
        np.frombuffer(scan.row_lines, dtype=np.int64) if scan.row_lines else np.zeros(0, np.int64)
    )
    return lines[: max(scan.row, 0)]
