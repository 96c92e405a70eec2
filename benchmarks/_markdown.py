"""Number formatting and tables shared by the report modules."""

from __future__ import annotations

__all__ = ["num", "ratio", "table"]


def num(x: float | None, digits: int | None = None) -> str:
    """A number with thousands separators; digits chosen by magnitude unless given."""
    if x is None:
        return "-"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}"


def ratio(x: float | None) -> str:
    """A ratio with two decimals ('' for None)."""
    return "" if x is None else f"{x:.2f}"


def table(head: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; ``align`` holds one ``---``/``---:`` per column."""
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out
