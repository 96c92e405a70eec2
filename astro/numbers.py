"""The one number formatter of every table, message and report: small values keep their digits.

Fixed decimals suit values of order one (biases in dex, ``log10 M``, percentages), but lose small
ones: a saliency median of ``1.3e-4`` printed with 4 decimals reads ``0.0001 [0.0001, 0.0001]``.
:func:`format_number` prints ``decimals`` decimals unless that shows fewer than ``sig``
significant digits; then it prints exactly ``sig`` significant digits (trailing zeros kept;
scientific notation below ``1e-4``, as Python's ``#g`` format). CLI tables (``cli``), flow artifacts (``flows``) and report
files (``models.comparison``, ``services.jobs.report``) all format through it.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["format_number", "format_interval", "round_significant"]


def format_number(
    value: object,
    *,
    decimals: int = 4,
    sig: int = 3,
    signed: bool = False,
    scale: float = 1.0,
    missing: str = "-",
) -> str:
    """Format a number for people: ``decimals`` decimals, at least ``sig`` significant digits.

    Parameters
    ----------
    value
        A float, an int (printed as it is), None (``missing``), or anything else (``str``).
    decimals
        Decimals of an ordinary value (``0.0213`` -> ``'0.0213'`` with 4).
    sig
        Significant digits a small value keeps (``1.234e-4`` -> ``'0.000123'``,
        ``-3.5e-6`` -> ``'-3.50e-06'``).
    signed
        Show a ``+`` before positive values (biases).
    scale
        Multiply first (``scale=100`` for a fraction shown in percent).
    missing
        Text for None.

    Returns
    -------
    str
        ``'nan'``, ``'inf'`` and ``'-inf'`` for non-finite values.
    """
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    if isinstance(value, Integral) and scale == 1.0:
        return f"{value:+d}" if signed else str(int(value))
    v = float(value) * scale
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("-inf" if v < 0 else ("+inf" if signed else "inf"))
    plus = "+" if signed else ""
    if v != 0 and abs(v) * 10**decimals < 10 ** (sig - 1):
        return f"{v:{plus}#.{sig}g}"
    if abs(v) >= 10 ** (decimals + 6):
        return f"{v:{plus}.{sig + 3}g}"
    return f"{v:{plus}.{decimals}f}"


def format_interval(
    value: object, lo: object, hi: object, *, missing: str = "-", **options: object
) -> str:
    """``'value [lo, hi]'``, each through :func:`format_number` with the same ``options``."""
    parts = [format_number(x, missing=missing, **options) for x in (value, lo, hi)]  # type: ignore[arg-type]
    if lo is None and hi is None:
        return parts[0]
    return f"{parts[0]} [{parts[1]}, {parts[2]}]"


def round_significant(value: float, sig: int = 6) -> float:
    """Round ``value`` to ``sig`` significant digits (``round(v, 6)`` would turn 1e-7 into 0)."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{sig}g}")
