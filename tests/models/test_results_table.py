"""docs/benchmark_results.csv: one row per (preset, estimator), read back exactly and checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.comparison import benchmark_table
from models.data import ClusterArrays
from models.errors import DataError
from models.oracle import ORACLE_LABEL
from models.results_table import (
    ENSEMBLE_SUFFIX,
    RESULTS_COLUMNS,
    estimator_name,
    merge_results_csv,
    read_results_csv,
    results_rows,
    write_results_csv,
)


def _table(arrays: ClusterArrays) -> list[dict]:
    true = arrays.log10_m500c
    rng = np.random.default_rng(1)
    preds = {
        "Single-band CNN": true + 0.08 * rng.standard_normal(true.size),
        "Single-band CNN" + ENSEMBLE_SUFFIX: true + 0.06 * rng.standard_normal(true.size),
        "Multiband CNN": true + 0.07 * rng.standard_normal(true.size),
    }
    return benchmark_table(arrays, preds, oracle=true + 0.02, n_boot=40)


def test_rows_round_trip_with_names_and_paper_values(arrays32: ClusterArrays, tmp_path) -> None:
    rows = results_rows("paper", _table(arrays32)) + results_rows("erass", _table(arrays32))
    path = write_results_csv(rows, tmp_path / "benchmark_results.csv")
    assert path.read_text().splitlines()[0] == ",".join(RESULTS_COLUMNS)
    back = read_results_csv(path)
    assert back == rows  # floats written with repr: exact
    names = [r.estimator for r in back if r.preset == "paper"]
    assert names[-4:] == ["single", "single_ensemble", "multi", "oracle"]
    assert "L_X" in names and "N_gal + N_phot,500c" in names
    by = {r.estimator: r for r in back if r.preset == "paper"}
    assert by["single"].paper_sigma_lnM == pytest.approx(0.178)
    assert by["multi"].paper_sigma_lnM == pytest.approx(0.1618)
    assert by["oracle"].paper_sigma_lnM is None and by["oracle"].kind == "oracle"
    assert by["L_X"].bias_dex is None and by["single"].bias_dex is not None
    # 0.08 dex of Gaussian noise is 0.184 in ln M
    assert by["single"].sigma_lnM == pytest.approx(0.08 * np.log(10), rel=0.25)
    assert all(r.n == len(arrays32) for r in back)


def test_estimator_names() -> None:
    assert estimator_name("Multimodal CNN", "cnn") == "multimodal"
    assert estimator_name("Multiband CNN" + ENSEMBLE_SUFFIX, "cnn") == "multi_ensemble"
    assert estimator_name(f"{ORACLE_LABEL} (T, c200c)", "oracle") == "oracle"
    assert estimator_name("M_gas", "proxy") == "M_gas"
    with pytest.raises(DataError, match="name the row after its network"):
        estimator_name("Some CNN", "cnn")


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join([",".join(RESULTS_COLUMNS), *lines]) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("paper,single,cnn,3300,0.2,0.19,0.21,0.0,-0.01,0.01,0.178", None),
        ("paper,single,cnn,3300,0.25,0.19,0.21,0.0,-0.01,0.01,0.178", "outside its interval"),
        ("paper,single,cnn,3300,0.2,0.19,0.21,0.02,-0.01,0.01,", "bias_dex 0.02 is outside"),
        ("paper,single,cnn,3300,abc,0.19,0.21,,,,", "sigma_lnM = 'abc' is not a number"),
        ("paper,single,cnn,,0.2,0.19,0.21,,,,", "n is empty"),
        ("paper,single,net,3300,0.2,0.19,0.21,,,,", "kind 'net'"),
        ("paper,single,cnn,3300,nan,0.19,0.21,,,,", "is not finite"),
    ],
)
def test_the_reader_names_the_line_and_field(tmp_path, line: str, message: str | None) -> None:
    path = _write(tmp_path / "r.csv", "erass,L_X,proxy,3300,0.3,0.29,0.31,,,,0.2633", line)
    if message is None:
        assert [r.estimator for r in read_results_csv(path)] == ["L_X", "single"]
        return
    with pytest.raises(DataError, match=message) as err:
        read_results_csv(path)
    assert "line 3" in str(err.value)


def test_repeated_rows_and_a_wrong_header_are_refused(tmp_path) -> None:
    row = "paper,L_X,proxy,3300,0.3,0.29,0.31,,,,"
    with pytest.raises(DataError, match=r"line 3: \(paper, L_X\) appears twice"):
        read_results_csv(_write(tmp_path / "a.csv", row, row))
    (tmp_path / "b.csv").write_text("preset,estimator\npaper,L_X\n")
    with pytest.raises(DataError, match="header"):
        read_results_csv(tmp_path / "b.csv")
    with pytest.raises(DataError, match="appears twice"):
        results_rows(
            "paper",
            [
                {
                    "observable": "L_X",
                    "kind": "proxy",
                    "n": 1,
                    "sigma_lnM": 1,
                    "sigma_lnM_lo": 0,
                    "sigma_lnM_hi": 2,
                }
            ]
            * 2,
        )


def test_a_presets_rows_replace_only_that_preset(arrays32: ClusterArrays, tmp_path) -> None:
    path = tmp_path / "benchmark_results.csv"
    paper = results_rows("paper", _table(arrays32))
    erass = results_rows("erass", _table(arrays32))
    merge_results_csv(path, "paper", paper)
    merge_results_csv(path, "erass", erass)
    again = [r for r in results_rows("paper", _table(arrays32)) if r.kind != "proxy"]
    merge_results_csv(path, "paper", again, mode="preset")
    back = read_results_csv(path)
    assert [r for r in back if r.preset == "erass"] == erass
    assert [r for r in back if r.preset == "paper"] == again


def test_adding_one_estimator_keeps_the_others_in_place(arrays32: ClusterArrays, tmp_path) -> None:
    """A run of one network (``--models multimodal``) adds its row after the other CNNs and
    replaces only the rows it recomputed; nothing of the preset is dropped."""
    import dataclasses

    path = tmp_path / "benchmark_results.csv"
    paper = results_rows("paper", _table(arrays32))
    erass = results_rows("erass", _table(arrays32))
    merge_results_csv(path, "paper", paper)
    merge_results_csv(path, "erass", erass)
    cnn = next(r for r in paper if r.kind == "cnn")
    ens = dataclasses.replace(
        cnn, estimator="multimodal", sigma_lnM=cnn.sigma_lnM - 0.01,
        ci68_lo=cnn.ci68_lo - 0.01, ci68_hi=cnn.ci68_hi - 0.01,
    )  # fmt: skip
    proxy = next(r for r in paper if r.kind == "proxy")
    redone = dataclasses.replace(proxy, n=proxy.n - 1)
    merge_results_csv(path, "paper", [redone, ens])
    back = [r for r in read_results_csv(path) if r.preset == "paper"]
    assert "multimodal" not in [r.estimator for r in paper]
    assert [r.estimator for r in back if r.estimator != "multimodal"] == [
        r.estimator for r in paper
    ]
    assert next(r for r in back if r.estimator == proxy.estimator) == redone
    last_cnn = max(i for i, r in enumerate(back) if r.kind == "cnn")
    assert back[last_cnn].estimator == "multimodal"
    assert [r for r in read_results_csv(path) if r.preset == "erass"] == erass
    with pytest.raises(DataError, match="preset 'paper'"):
        merge_results_csv(path, "paper", erass)


def test_gaussian_and_ensemble_variants_have_their_own_names() -> None:
    from models.comparison import estimator_label

    for name in ("single_gaussian_ensemble", "multi_gaussian", "multimodal_ensemble"):
        assert estimator_name(estimator_label(name), "cnn") == name


def test_results_markdown_shows_one_presets_rows_with_their_names() -> None:
    from models.results_table import ResultRow, results_markdown

    rows = [
        ResultRow("paper", "single", "cnn", 3300, 0.1962, 0.1932, 0.1989, 0.0033, 0.0019,
                  0.0049, 0.178),
        ResultRow("paper", "L_X", "proxy", 3300, 0.1865, 0.1841, 0.1898, None, None, None,
                  0.2633),
        ResultRow("erass", "single", "cnn", 3300, 0.25, 0.24, 0.26),
    ]  # fmt: skip
    md = results_markdown(rows, "paper").splitlines()
    assert len(md) == 4 and md[0].startswith("| estimator |")
    assert md[2] == (
        "| `single` | cnn | 19.62 [19.32, 19.89] | +0.0033 [+0.0019, +0.0049] | 3,300 | 17.80 |"
    )
    assert md[3] == "| `L_X` | proxy | 18.65 [18.41, 18.98] |  | 3,300 | 26.33 |"
    assert "| `single` | cnn | 25.00 [24.00, 26.00] |  | 3,300 |  |" in results_markdown(
        rows, "erass"
    )
    with pytest.raises(
        DataError, match="no rows of preset 'other'; presets: \\['erass', 'paper'\\]"
    ):
        results_markdown(rows, "other")


def test_embed_results_regenerates_only_the_marked_tables() -> None:
    from models.results_table import ResultRow, embed_results, results_markdown

    rows = [ResultRow("paper", "single", "cnn", 10, 0.2, 0.19, 0.21),
            ResultRow("erass", "multi", "cnn", 10, 0.3, 0.29, 0.31)]  # fmt: skip
    page = (
        "# Title\n\n<!-- results:paper -->\nold table\n<!-- /results:paper -->\n\ntext "
        "<!-- results:erass -->stale<!-- /results:erass --> end\n"
    )
    new = embed_results(page, rows)
    assert new.startswith("# Title\n\n<!-- results:paper -->\n| estimator |")
    assert results_markdown(rows, "paper") in new and results_markdown(rows, "erass") in new
    assert "old table" not in new and "stale" not in new and new.endswith(" end\n")
    assert embed_results(new, rows) == new  # idempotent
    with pytest.raises(DataError, match="no closing <!-- /results:paper -->"):
        embed_results("<!-- results:paper -->\n", rows)


def test_the_best_cnn_is_set_against_the_best_observed_proxy_only() -> None:
    """The demo's last line: idealised proxies (L_X, M_gas...) and the oracle do not count."""
    from models.comparison import cnn_vs_observed

    rows = [
        {"observable": "M_gas", "kind": "proxy", "sigma_lnM": 0.08},  # idealised: ignored
        {"observable": "L_X", "kind": "proxy", "sigma_lnM": 0.18},  # idealised: ignored
        {"observable": "N_phot within R500c", "kind": "proxy", "sigma_lnM": 0.26},
        {"observable": "all four observed scalars", "kind": "combination", "sigma_lnM": 0.207},
        {"observable": "N_gal", "kind": "proxy", "sigma_lnM": float("nan")},
        {"observable": "Single-band CNN", "kind": "cnn", "sigma_lnM": 0.198},
        {"observable": "Multiband CNN", "kind": "cnn", "sigma_lnM": 0.201},
        {"observable": ORACLE_LABEL, "kind": "oracle", "sigma_lnM": 0.05},
    ]
    duel = cnn_vs_observed(rows)
    assert duel is not None
    assert duel["cnn"]["observable"] == "Single-band CNN"
    assert duel["proxy"]["observable"] == "all four observed scalars"
    assert duel["difference"] == pytest.approx(-0.009)
    assert cnn_vs_observed([r for r in rows if r["kind"] != "cnn"]) is None
    assert cnn_vs_observed([r for r in rows if r["kind"] == "cnn"]) is None


def test_a_network_without_any_prediction_is_left_out_of_the_table(
    arrays32: ClusterArrays,
) -> None:
    none = np.full(len(arrays32), np.nan)
    some = arrays32.log10_m500c + 0.05
    rows = benchmark_table(arrays32, {"A": none, "B": some}, n_boot=10)
    names = [r["observable"] for r in rows]
    assert "A" not in names and "B" in names
