"""A minimal, fast writer of standard FITS files (primary header, int32 images, binary tables).

astropy.io.fits spends ~50 ms per small file on header bookkeeping; writing the 2880-byte
blocks directly (cards formatted by ``astropy.io.fits.Card``, so they stay standard) takes a few
ms. Files are read back with astropy in the tests and by :func:`mocks.read_catalogue`.
Deterministic: the same inputs give the same bytes (no DATE or CHECKSUM cards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

__all__ = ["Card", "primary_bytes", "image_bytes", "bintable_bytes"]

BLOCK = 2880
Card = tuple[str, Any] | tuple[str, Any, str]


def _header(cards: Sequence[Card]) -> bytes:
    text = "".join(fits.Card(*c).image for c in cards) + "END".ljust(80)
    raw = text.encode("ascii")
    return raw + b" " * (-len(raw) % BLOCK)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def primary_bytes(cards: Sequence[Card]) -> bytes:
    """Return a data-less primary HDU with the extra ``cards`` (keyword, value[, comment])."""
    base: list[Card] = [
        ("SIMPLE", True, "conforms to FITS standard"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 0, "number of array dimensions"),
        ("EXTEND", True),
    ]
    return _header(base + list(cards))


def image_bytes(data: NDArray, name: str, cards: Sequence[Card]) -> bytes:
    """Return an IMAGE extension holding ``data`` (int32, numpy axis order) named ``name``."""
    arr = np.ascontiguousarray(data, dtype=">i4")
    base: list[Card] = [
        ("XTENSION", "IMAGE", "Image extension"),
        ("BITPIX", 32, "array data type"),
        ("NAXIS", arr.ndim, "number of array dimensions"),
    ]
    base += [(f"NAXIS{k}", n) for k, n in enumerate(reversed(arr.shape), start=1)]
    base += [("PCOUNT", 0, "number of parameters"), ("GCOUNT", 1, "number of groups")]
    base += [("EXTNAME", name, "extension name")]
    return _header(base + list(cards)) + _pad(arr.tobytes())


_FORMATS = {"f4": ("E", ">f4"), "f8": ("D", ">f8"), "i4": ("J", ">i4"), "i8": ("K", ">i8")}


def bintable_bytes(
    columns: Sequence[tuple[str, NDArray, str | None]], name: str, cards: Sequence[Card] = ()
) -> bytes:
    """Return a BINTABLE extension of scalar columns (name, values, unit or None).

    Supported dtypes: float32 (E), float64 (D), int32 (J), int64 (K) and bool (L).
    """
    n = len(columns[0][1]) if columns else 0
    fields, tcards = [], []
    for k, (cname, values, unit) in enumerate(columns, start=1):
        values = np.asarray(values)
        if values.shape != (n,):
            raise ValueError(f"column {cname!r} has shape {values.shape}, want ({n},)")
        if values.dtype == np.bool_:
            tform, dt = "L", "S1"
        else:
            key = values.dtype.str[1:]
            if key not in _FORMATS:
                raise ValueError(f"column {cname!r}: unsupported dtype {values.dtype}")
            tform, dt = _FORMATS[key]
        fields.append((cname, dt))
        tcards += [(f"TTYPE{k}", cname), (f"TFORM{k}", tform)]
        if unit:
            tcards.append((f"TUNIT{k}", unit))
    rec = np.zeros(n, dtype=fields)
    for cname, values, _ in columns:
        values = np.asarray(values)
        rec[cname] = np.where(values, b"T", b"F") if values.dtype == np.bool_ else values
    base: list[Card] = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"),
        ("NAXIS1", rec.dtype.itemsize, "length of dimension 1"),
        ("NAXIS2", n, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(columns), "number of table fields"),
    ]
    return _header(base + tcards + [("EXTNAME", name, "extension name")] + list(cards)) + _pad(
        rec.tobytes()
    )
