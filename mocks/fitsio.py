"""A minimal, fast writer of standard FITS files (primary header, int32 images, binary tables).

astropy.io.fits spends ~50 ms per small file on header bookkeeping; writing the 2880-byte
blocks directly takes a few ms. Cards use the fixed format of the FITS standard (4.0, sect. 4.2);
the tests open every kind of file with astropy and ``verify('exception')``.
Deterministic: the same inputs give the same bytes (no DATE or CHECKSUM cards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Card",
    "card_image",
    "primary_bytes",
    "image_bytes",
    "bintable_bytes",
    "read_hdus",
    "FitsParseError",
]

BLOCK = 2880
Card = tuple[str, Any] | tuple[str, Any, str]


def _format_value(value: Any) -> str:
    """Fixed-format FITS value field (FITS standard 4.0, sect. 4.2)."""
    if isinstance(value, bool | np.bool_):
        return ("T" if value else "F").rjust(20)
    if isinstance(value, int | np.integer):
        return str(int(value)).rjust(20)
    if isinstance(value, float | np.floating):
        v = float(value)
        if not np.isfinite(v):
            raise ValueError("FITS header values must be finite")
        candidates = [repr(v).upper()] + [f"{v:.{d}G}" for d in range(16, 8, -1)]
        for text in candidates:  # shortest round-trip repr first
            if "." not in text and "E" not in text:
                text += ".0"
            if len(text) <= 20:
                return text.rjust(20)
        raise ValueError(f"cannot format {v!r}")
    if isinstance(value, str):
        if not value.isascii():
            raise ValueError("FITS header strings must be ASCII")
        return ("'" + value.replace("'", "''").ljust(8) + "'").ljust(20)
    raise TypeError(f"unsupported FITS header value {value!r}")


def card_image(keyword: str, value: Any, comment: str = "") -> str:
    """Return the 80-character FITS card ``KEYWORD = value / comment``."""
    if len(keyword) > 8 or not keyword.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"invalid FITS keyword {keyword!r}")
    text = f"{keyword.upper():<8}= {_format_value(value)}"
    if len(text) > 80:
        raise ValueError(f"card {keyword} is too long")
    if comment:
        text += (" / " + comment)[: 80 - len(text)]
    return text.ljust(80)


def _header(cards: Sequence[Card]) -> bytes:
    text = "".join(card_image(*c) for c in cards) + "END".ljust(80)
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


# ---------------------------------------------------------------- reading
_NUMPY_OF_TFORM = {"E": ">f4", "D": ">f8", "J": ">i4", "K": ">i8", "L": "S1", "B": "u1", "I": ">i2"}
_NUMPY_OF_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class FitsParseError(ValueError):
    """The bytes are not a FITS layout this minimal reader understands (use astropy instead)."""


def _value(text: str) -> Any:
    text = text.strip()
    if text.startswith("'"):
        out, k = [], 1
        while k < len(text):
            ch = text[k]
            if ch == "'":
                if text[k + 1 : k + 2] == "'":
                    out.append("'")
                    k += 2
                    continue
                break
            out.append(ch)
            k += 1
        return "".join(out).rstrip()
    text = text.split("/", 1)[0].strip()
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text.replace("D", "E"))
        except ValueError:
            return text


def read_hdus(raw: bytes) -> list[tuple[dict[str, Any], NDArray | None]]:
    """Parse a FITS byte string into (header dict, data) pairs.

    Supports uncompressed images and binary tables of scalar columns (what
    :func:`image_bytes` and :func:`bintable_bytes` write). Logical columns become bool.

    Raises
    ------
    FitsParseError
        Truncated data, missing END, or an unsupported layout (e.g. tile-compressed images).
    """
    pos, out = 0, []
    while pos < len(raw):
        head: dict[str, Any] = {}
        ended = False
        while not ended:
            block = raw[pos : pos + BLOCK]
            if len(block) < BLOCK:
                raise FitsParseError("truncated header")
            pos += BLOCK
            for k in range(0, BLOCK, 80):
                card = block[k : k + 80].decode("ascii", errors="replace")
                key = card[:8].strip()
                if key == "END":
                    ended = True
                    break
                if card[8:10] == "= ":
                    head[key] = _value(card[10:])
        if head.get("ZIMAGE") or head.get("GCOUNT", 1) != 1 or head.get("PCOUNT", 0) != 0:
            raise FitsParseError("compressed or grouped HDU")
        shape = tuple(head.get(f"NAXIS{k}", 0) for k in range(head.get("NAXIS", 0), 0, -1))
        nbytes = abs(head["BITPIX"]) // 8 * int(np.prod(shape)) if shape else 0
        if pos + nbytes > len(raw):
            raise FitsParseError("truncated data")
        data: NDArray | None = None
        if head.get("XTENSION") == "BINTABLE":
            fields = []
            for k in range(1, head["TFIELDS"] + 1):
                tform = str(head[f"TFORM{k}"]).strip().lstrip("1")
                if tform not in _NUMPY_OF_TFORM:
                    raise FitsParseError(f"unsupported TFORM {tform!r}")
                fields.append((head[f"TTYPE{k}"], _NUMPY_OF_TFORM[tform]))
            rec = np.frombuffer(raw, dtype=np.dtype(fields), count=shape[0], offset=pos)
            cols = {}
            for name, dt in fields:
                cols[name] = (
                    rec[name] == b"T"
                    if dt == "S1"
                    else rec[name].astype(dt[1:] if dt[0] == ">" else dt)
                )
            data = cols  # type: ignore[assignment]
        elif shape:
            arr = np.frombuffer(
                raw, dtype=_NUMPY_OF_BITPIX[head["BITPIX"]], count=int(np.prod(shape)), offset=pos
            )
            data = arr.reshape(shape)
        out.append((head, data))
        pos += nbytes + (-nbytes % BLOCK)
    return out
