"""Numbers in CLI tables keep their value (issue 16: saliency medians printed as 0.0001)."""

from __future__ import annotations

from cli.commands.pipeline import _fmt


def test_small_numbers_keep_three_significant_digits() -> None:
    assert [_fmt(v) for v in (1.234e-4, 1.251e-4, 1.31e-4)] == ["0.000123", "0.000125", "0.000131"]
    assert _fmt(-3.5e-6) == "-3.5e-06"


def test_ordinary_numbers_and_percentages_are_unchanged() -> None:
    assert _fmt(0.0213) == "0.0213" and _fmt(-0.1024) == "-0.1024" and _fmt(0.0) == "0.0000"
    assert _fmt(0.2053, pct=True) == "20.53" and _fmt(None) == "-" and _fmt(12) == "12"
