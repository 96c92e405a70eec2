"""Read tabular files (FITS, CSV, ECSV, VOTable) with clear errors for broken files.

Every failure names the file; a truncated FITS file is detected from its headers (the data
size each HDU declares versus the bytes present) before astropy gets a chance to mis-read it,
and a CSV/ECSV file whose cells would make astropy's memory blow up is refused by a streaming
scan first (:mod:`survey.text_tables`).
"""

from __future__ import annotations

import gzip
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from survey.delimited import TextOptions, read_delimited
from survey.errors import CatalogueColumnError, CatalogueReadError, SurveyError
from survey.text_tables import DEFAULT_MAX_CELL_BYTES, DEFAULT_MAX_TEXT_BYTES, check_text_table

__all__ = [
    "sha256_path",
    "file_identity",
    "detect_format",
    "check_fits_complete",
    "read_table",
    "float_column",
    "str_column",
    "TextColumn",
    "column_unit",
    "require_columns",
    "row_lines",
]

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fz")
_FORMATS = {
    "fits": "fits",
    "csv": "ascii.csv",
    "ecsv": "ascii.ecsv",
    "votable": "votable",
    "text": "delimited text (survey.delimited)",
}


def sha256_path(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_identity(path: Path) -> tuple[str, int]:
    """Return the sha256 and size [bytes] of a file (SurveyError if it does not exist)."""
    if not path.is_file():
        raise SurveyError(f"{path}: no such file")
    return sha256_path(path), path.stat().st_size


def detect_format(path: Path) -> str:
    """Guess the table format from the file name: ``fits``, ``csv``, ``ecsv`` or ``votable``."""
    name = path.name.lower()
    if name.endswith(_FITS_SUFFIXES):
        return "fits"
    for suffix, fmt in (
        (".ecsv", "ecsv"),
        (".csv", "csv"),
        (".vot", "votable"),
        (".xml", "votable"),
    ):
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return fmt
    raise CatalogueReadError(
        f"{path}: cannot tell the table format from the name; use one of the suffixes "
        f"{list(_FITS_SUFFIXES) + ['.csv', '.ecsv', '.vot', '.xml']} or set 'format' in the spec"
    )


def _raw_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise CatalogueReadError(
                f"{path}: gzip stream is corrupt or truncated ({exc})"
            ) from exc
    return data


def check_fits_complete(path: Path) -> int:
    """Check that a FITS file starts with ``SIMPLE`` and holds all the data its headers declare.

    Returns
    -------
    int
        Number of HDUs.

    Raises
    ------
    CatalogueReadError
        Not a FITS file, or truncated (the message gives the HDU and the missing byte count).
    """
    raw = _raw_bytes(path)
    if not raw.startswith(b"SIMPLE  ="):
        # Never quote the bytes: the message is stored and shown, and the file may be anything.
        raise CatalogueReadError(
            f"{path}: not a FITS file (a FITS file starts with 'SIMPLE  =', this one does not)"
        )
    offset, n_hdu = 0, 0
    while offset < len(raw):
        try:
            header, header_len = _parse_header(raw, offset)
        except ValueError as exc:
            if n_hdu == 0:
                raise CatalogueReadError(f"{path}: primary header is corrupt ({exc})") from exc
            raise CatalogueReadError(
                f"{path}: HDU {n_hdu} header is corrupt or truncated ({exc})"
            ) from exc
        try:
            size = _data_size(header)
        except (KeyError, ValueError, TypeError, fits.VerifyError) as exc:
            raise CatalogueReadError(
                f"{path}: HDU {n_hdu} header has an invalid or missing size keyword ({exc})"
            ) from exc
        padded = -(-size // 2880) * 2880
        data_start = offset + header_len
        if data_start + size > len(raw):
            raise CatalogueReadError(
                f"{path}: truncated FITS file: HDU {n_hdu} declares {size} data bytes but only "
                f"{max(len(raw) - data_start, 0)} are present"
            )
        offset = data_start + padded
        n_hdu += 1
    return n_hdu


def _data_size(header: fits.Header) -> int:
    """Return the data bytes an HDU declares: |BITPIX|/8 GCOUNT (PCOUNT + prod NAXISn).

    FITS Standard (Pence et al. 2010, A&A 524, A42), eqs. 1-2.
    """
    naxis = int(header.get("NAXIS", 0))
    if naxis <= 0:
        return 0
    dims = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
    if any(d < 0 for d in dims):
        raise ValueError(f"negative axis length {dims}")
    size = abs(int(header["BITPIX"])) // 8 * int(header.get("GCOUNT", 1))
    return size * (int(header.get("PCOUNT", 0)) + int(np.prod(dims)))


def _parse_header(raw: bytes, offset: int) -> tuple[fits.Header, int]:
    end = offset
    while True:
        block = raw[end : end + 2880]
        if len(block) < 2880:
            raise ValueError("no END card before the end of the file")
        end += 2880
        cards = [block[i : i + 80] for i in range(0, 2880, 80)]
        if any(c.startswith(b"END") and c[3:].strip() == b"" for c in cards):
            break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.Header.fromstring(raw[offset:end].decode("ascii", "replace"))
    return header, end - offset


def read_table(
    path: Path,
    fmt: str = "auto",
    hdu: int | str = 1,
    *,
    max_cell_bytes: int = DEFAULT_MAX_CELL_BYTES,
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
    text: TextOptions | None = None,
) -> Table:
    """Read a table, turning every failure into a :class:`CatalogueReadError` naming the file.

    For text formats ``table.meta['row_lines']`` holds, per row, the 1-based file line it
    starts on (what an editor shows); see :func:`row_lines`.

    Parameters
    ----------
    path : Path
        The file.
    fmt : {'auto', 'fits', 'csv', 'ecsv', 'votable', 'text'}
        Table format; ``auto`` guesses from the file name; ``text`` is a delimited table
        read with ``text`` (:mod:`survey.delimited`, e.g. NED's ``|``-separated output).
    hdu : int or str
        FITS extension holding the table.
    max_cell_bytes, max_text_bytes : int
        CSV/ECSV only: the longest cell, and the most memory astropy may spend on text columns
        (:func:`survey.text_tables.check_text_table`), checked before astropy reads the file.
    text : TextOptions, optional
        Delimiter, header line and comment prefix of a ``text`` table.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogueReadError(f"{path}: no such file")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in _FORMATS:
        raise CatalogueReadError(
            f"{path}: unknown format {fmt!r}; choose one of {sorted(_FORMATS)}"
        )
    if fmt == "text":
        return read_delimited(
            path,
            text or TextOptions(),
            max_cell_bytes=max_cell_bytes,
            max_text_bytes=max_text_bytes,
        )
    kwargs: dict[str, object] = {"format": _FORMATS[fmt]}
    lines = None
    if fmt == "fits":
        n_hdu = check_fits_complete(path)
        if isinstance(hdu, int) and hdu >= n_hdu:
            raise CatalogueReadError(f"{path}: has {n_hdu} HDUs, the spec asks for HDU {hdu}")
        kwargs["hdu"] = hdu
    elif fmt in ("csv", "ecsv"):
        lines = check_text_table(
            path, fmt, max_cell_bytes=max_cell_bytes, max_text_bytes=max_text_bytes
        )
    try:
        with warnings.catch_warnings():
            # unit strings astropy does not know ('Msun/h', 'ergs s**-1') are parsed by the spec
            warnings.simplefilter("ignore")
            table = Table.read(path, **kwargs)
    except Exception as exc:  # astropy raises many types for malformed files
        raise CatalogueReadError(f"{path}: cannot read as {fmt}: {exc}") from exc
    if len(table) == 0:
        raise CatalogueReadError(f"{path}: the table has no rows")
    if lines is not None and len(lines) == len(table):
        table.meta["row_lines"] = lines
    return table


def row_lines(table: Table) -> np.ndarray | None:
    """Per row, the 1-based file line it starts on (text tables), or None (FITS, VOTable)."""
    lines = table.meta.get("row_lines")
    if lines is None or len(lines) != len(table):
        return None
    return np.asarray(lines, dtype=np.int64)


def require_columns(table: Table, columns: list[str], *, path: Path, spec_name: str) -> None:
    """Raise :class:`CatalogueColumnError` naming every mapped column the file lacks."""
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise CatalogueColumnError(
            f"{path}: column(s) {missing} mapped by spec {spec_name!r} not found; the file has "
            f"{table.colnames}"
        )


def column_unit(table: Table, name: str) -> str | None:
    """Return the unit string the file gives a column (as written), or None."""
    unit = table[name].unit
    return None if unit is None else unit.to_string()


def float_column(table: Table, name: str, *, path: Path) -> np.ndarray:
    """Return a column as float64 with masked/blank entries as NaN.

    Raises
    ------
    CatalogueColumnError
        The column is not numeric (e.g. text in a RA column).
    """
    col = table[name]
    mask = np.ma.getmaskarray(col)
    data = np.asarray(col.data if hasattr(col, "data") else col)
    if data.ndim != 1:
        raise CatalogueColumnError(f"{path}: column {name!r} is not a scalar column ({data.shape})")
    if data.dtype.kind in "SU":
        out = np.full(len(data), np.nan)
        for i, v in enumerate(data):
            try:  # undecodable bytes (UnicodeDecodeError is a ValueError) are not a number
                s = v.decode() if isinstance(v, bytes) else str(v)
                out[i] = float(s) if s.strip() else np.nan
            except ValueError:
                out[i] = np.nan
        if np.all(np.isnan(out)):
            raise CatalogueColumnError(f"{path}: column {name!r} is text, not numbers")
    elif data.dtype.kind in "biuf":
        out = data.astype(np.float64)
    else:
        raise CatalogueColumnError(f"{path}: column {name!r} has non-numeric type {data.dtype}")
    out = out.copy()
    out[mask] = np.nan
    return out


@dataclass(frozen=True)
class TextColumn:
    r"""A text column, decoded without loss.

    Attributes
    ----------
    values : list of str
        Stripped strings; ``''`` for masked cells and for the cells in ``undecodable``.
    undecodable : dict of int to str
        0-based row -> the cell's bytes with the non-UTF-8 ones escaped (``b'Caf\xe9'`` ->
        ``'Caf\xe9'``): cells that are not UTF-8 (e.g. latin-1), never replaced by U+FFFD.
    """

    values: list[str]
    undecodable: dict[int, str] = field(default_factory=dict)


def str_column(table: Table, name: str) -> TextColumn:
    """Return a column as stripped strings; bytes are decoded as UTF-8 (ASCII included).

    A cell whose bytes are not UTF-8 is not guessed at (latin-1? cp1252?) nor replaced by
    U+FFFD: it is listed in :attr:`TextColumn.undecodable` for the caller to reject.
    """
    col = table[name]
    mask = np.ma.getmaskarray(col)
    out: list[str] = []
    undecodable: dict[int, str] = {}
    for i, (v, m) in enumerate(zip(np.asarray(col), mask, strict=True)):
        if m:
            out.append("")
        elif isinstance(v, bytes):
            try:
                out.append(v.decode("utf-8").strip())
            except UnicodeDecodeError:
                undecodable[i] = v.decode("utf-8", "backslashreplace").strip()
                out.append("")
        else:
            out.append(str(v).strip())
    return TextColumn(out, undecodable)
