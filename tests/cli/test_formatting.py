"""Numbers keep their value everywhere (issue 16: saliency medians printed as 0.0001).

One formatter (``astro.numbers``) behind the CLI tables, the ``attribute`` summary, the
benchmark markdown report and the flows' table artifacts.
"""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from astro.numbers import format_interval, format_number, round_significant
from cli.commands.pipeline import _fmt


def test_small_numbers_keep_three_significant_digits() -> None:
    assert [_fmt(v) for v in (1.234e-4, 1.251e-4, 1.31e-4)] == ["0.000123", "0.000125", "0.000131"]
    assert _fmt(-3.5e-6) == "-3.50e-06"
    assert format_number(1.1e-4) == "0.000110"  # trailing zeros are significant digits
    assert format_number(2.5e-5, signed=True) == "+2.50e-05"


def test_a_value_of_1e_4_with_its_interval_keeps_three_significant_digits() -> None:
    assert format_interval(1.0e-4, 0.95e-4, 1.052e-4) == "0.000100 [9.50e-05, 0.000105]"


def test_ordinary_numbers_and_percentages_are_unchanged() -> None:
    assert _fmt(0.0213) == "0.0213" and _fmt(-0.1024) == "-0.1024" and _fmt(0.0) == "0.0000"
    assert _fmt(0.2053, pct=True) == "20.53" and _fmt(None) == "-" and _fmt(12) == "12"
    assert (
        format_number(14.123456) == "14.1235" and format_number(-0.0123, signed=True) == "-0.0123"
    )
    assert format_number(0.2, decimals=2, scale=100) == "20.00"
    assert [format_number(v) for v in (math.nan, math.inf, -math.inf)] == ["nan", "inf", "-inf"]
    assert format_number(None, missing="") == "" and format_number("x") == "x"


def test_query_cells_keep_small_values() -> None:
    from cli.commands.query import _fmt as query_fmt

    assert query_fmt(3.2e-5) == "3.20e-05" and query_fmt(0.0712) == "0.0712"
    assert query_fmt([0.5, 2e-5]) == "[0.500, 2.00e-05]"


def test_table_artifacts_round_to_significant_digits_not_decimals() -> None:
    assert round_significant(1.23456789e-7) == pytest.approx(1.23457e-7, rel=1e-12)
    assert round(1.23456789e-7, 6) == 0.0  # what the artifacts did before
    assert round_significant(14.123456789) == 14.1235 and round_significant(0.0) == 0.0


def test_benchmark_markdown_keeps_a_small_bias() -> None:
    from models.comparison import table_markdown

    row = {
        "observable": "Single-band CNN", "sigma_lnM": 0.1534, "sigma_lnM_lo": 0.1401,
        "sigma_lnM_hi": 0.1702, "bias_dex": 2.5e-5, "bias_dex_lo": -3.1e-4,
        "bias_dex_hi": 4.0e-4, "n": 150, "paper_sigma_lnM": 0.178,
    }  # fmt: skip
    line = table_markdown([row]).splitlines()[-1]
    assert line == (
        "| Single-band CNN | 15.34 [14.01, 17.02] | +2.50e-05 [-0.000310, +0.000400] | 150 | 17.80 |"
    )


def test_attribute_prints_saliency_medians_with_three_digits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI's own printing of a summary, the flow replaced by its result."""
    import flows.estimate
    from cli import prefect_runs
    from cli.main import app

    summary = {
        "median_saliency_icm": 1.0e-4,
        "median_saliency_icm_lo": 0.95e-4,
        "median_saliency_icm_hi": 1.052e-4,
        "n_pixels": 16384,
    }
    result = {"saliency": {"summary": summary, "n_clusters": 8, "figures": {}}}
    monkeypatch.setattr(flows.estimate, "attribute", lambda params: result)
    monkeypatch.setattr(prefect_runs, "prepare", lambda: None)
    monkeypatch.setattr(prefect_runs, "announced", lambda flow: flow)
    out = CliRunner().invoke(app, ["attribute", "--run", "1"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "median_saliency_icm: 0.000100 [9.50e-05, 0.000105]" in out.output
    assert "n_pixels: 16384" in out.output
