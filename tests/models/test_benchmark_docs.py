"""docs/benchmark_results.csv parses and agrees with docs/benchmark.md (issue 14)."""

from __future__ import annotations

from pathlib import Path

from models.results_table import embed_results, read_results_csv

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_results_csv_parses_and_the_page_shows_exactly_its_numbers() -> None:
    rows = read_results_csv(DOCS / "benchmark_results.csv")
    page = (DOCS / "benchmark.md").read_text()
    presets = sorted({r.preset for r in rows})
    assert "paper" in presets
    for preset in presets:
        assert f"<!-- results:{preset} -->" in page, f"the page has no table of {preset!r}"
        # every row out-of-fold over the whole catalogue, but background-subtracted counts,
        # which lose the clusters with <= 0 net counts (a log)
        for r in rows:
            if r.preset == preset and "background subtracted" not in r.estimator:
                assert r.n == 3300, (preset, r.estimator)
            elif r.preset == preset:
                assert 0.7 * 3300 < r.n < 3300, (preset, r.estimator)
        names = {r.estimator for r in rows if r.preset == preset}
        assert {"single", "multi", "oracle", "L_X", "N_gal"} <= names, preset
    # the page's tables are the CSV's rows, number for number (regenerate with embed_results)
    assert embed_results(page, rows) == page
    for r in rows:  # point estimates inside their intervals
        assert r.ci68_lo <= r.sigma_lnM <= r.ci68_hi, (r.preset, r.estimator)
        if r.bias_dex is not None:
            assert r.bias_ci68_lo <= r.bias_dex <= r.bias_ci68_hi, (r.preset, r.estimator)
