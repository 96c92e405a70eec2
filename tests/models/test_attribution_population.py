"""attribute_population: fold routing, products, DB rows, pooled numbers, figures."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from models.attribution.errors import AttributionError
from models.attribution.figures import write_figures
from models.attribution.methods import AttributionSettings
from models.attribution.pixels import agn_icm_masks
from models.attribution.population import SummaryConfig, attribute_population, nphot_slope
from models.attribution.stats import SALIENCY_GRID
from models.data import ClusterArrays
from models.folds import make_folds
from models.inference import predict
from models.training import train_fold
from tests.models.conftest import tiny_config
from tests.models.synthetic import SLOPES, make_catalogue

PIX = 4.6 / 32  # h^-1 Mpc comoving per pixel of the 32 x 32 synthetic maps


@pytest.fixture(scope="module")
def setup() -> SimpleNamespace:
    cat = make_catalogue(96, 32, seed=0)
    arrays = ClusterArrays.from_parts(cat.truth, cat.counts_total, cat.galaxies)
    folds = make_folds(arrays)
    states, pres = {}, {}
    for f in (0, 3):
        r = train_fold(arrays, tiny_config("single", training={"max_epochs": 3}), f)
        states[f], pres[f] = r.model_state, r.preprocessing
    # the synthetic r500c is already a comoving length in the map's units
    r500c_pix = np.asarray(cat.truth["r500c"].value) / PIX
    return SimpleNamespace(
        cat=cat, arrays=arrays, folds=folds, states=states, pres=pres, r500c_pix=r500c_pix
    )


@pytest.fixture(scope="module")
def result(setup) -> dict:
    calls: list[tuple[int, int]] = []
    res = attribute_population(
        setup.states, setup.pres, setup.arrays, setup.folds, setup.cat.counts_agn,
        setup.cat.counts_icm, setup.r500c_pix, methods=("saliency", "integrated_gradients"),
        settings=AttributionSettings(n_steps=16), config=SummaryConfig(n_boot=50, chunk_size=7),
        device="cpu", progress=lambda d, n: calls.append((d, n)),
    )  # fmt: skip
    return {"res": res, "calls": calls}


def test_each_cluster_uses_its_test_fold_model(setup, result) -> None:
    sal = result["res"]["saliency"]
    idx = sal.per_cluster["cluster_index"]
    expected = np.flatnonzero(np.isin(setup.folds, [0, 3]))
    np.testing.assert_array_equal(np.sort(idx), expected)
    for f in (0, 3):
        sel = sal.per_cluster["fold"] == f
        np.testing.assert_array_equal(setup.folds[idx[sel]], f)
        pred = predict(setup.states[f], setup.pres[f], setup.arrays.subset(idx[sel]))
        np.testing.assert_allclose(sal.per_cluster["log10_m_pred"][sel], pred, atol=1e-4)
    calls = result["calls"]
    assert calls[-1] == (2 * expected.size, 2 * expected.size)
    assert all(a[0] < b[0] for a, b in zip(calls, calls[1:], strict=False))


def test_pooled_medians_match_the_maps(setup, result) -> None:
    """The histogram-pooled AGN/ICM medians equal np.median over the maps' pixels (< 1 bin)."""
    sal = result["res"]["saliency"]
    pc = sal.per_cluster
    agn_vals, icm_vals = [], []
    for k, i in enumerate(pc["cluster_index"]):
        a, c = agn_icm_masks(setup.cat.counts_agn[i].sum(0), setup.cat.counts_icm[i].sum(0))
        m = pc["maps"][k, 0]
        agn_vals.append(m[a & (m > 0)])
        icm_vals.append(m[c & (m > 0)])
    for key, vals in (("agn", agn_vals), ("icm", icm_vals)):
        pooled = np.sort(np.concatenate(vals))
        n = pooled.size
        got = math.log10(sal.summary[f"median_saliency_{key}"])
        # between the two middle order statistics (one value for odd n), to one bin width
        lo, hi = np.log10(pooled[(n - 1) // 2]), np.log10(pooled[n // 2])
        assert lo - SALIENCY_GRID.width <= got <= hi + SALIENCY_GRID.width
        got = 10**got
        assert (
            sal.summary[f"median_saliency_{key}_lo"]
            <= got
            <= sal.summary[f"median_saliency_{key}_hi"]
        )
    fr = pc["band_fractions"]
    np.testing.assert_allclose(fr, 1.0)  # single band: one channel carries everything
    assert sal.summary["band_fractions"] == [pytest.approx(1.0)]


def test_rows_arrays_and_summary_are_storable(setup, result, tmp_path) -> None:
    for method, res in result["res"].items():
        rows = res.rows()
        assert len(rows) == len(res)
        json.dumps(rows, allow_nan=False)  # jsonb-safe: NaN became None
        json.dumps(res.summary, allow_nan=False)
        row = rows[0]
        assert set(row) >= {
            "cluster_index", "cluster_id", "method", "r_core_over_r500c", "median_saliency_agn",
            "median_saliency_icm", "band_fractions", "summary",
        }  # fmt: skip
        assert row["method"] == method and row["cluster_id"] == 1000 + row["cluster_index"]
        arrays = res.to_arrays()
        np.savez(tmp_path / f"{method}.npz", **arrays)
        back = dict(np.load(tmp_path / f"{method}.npz", allow_pickle=False))
        assert set(back) == set(arrays)
        np.testing.assert_array_equal(back["maps"], arrays["maps"])
        assert str(back["method"]) == method
        assert back["profile_saliency"].shape == (len(res), 100)
        assert back["stack_profile_fraction"].shape == (5, 100)
        counts = setup.arrays.images[back["cluster_index"]]
        paths = write_figures(back, res.summary, counts, tmp_path / "fig", n_examples=2)
        assert set(paths) == {"examples", "profile", "agn_icm"}
        for p in paths.values():
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ig = result["res"]["integrated_gradients"]
    assert "r_core_over_r500c" not in ig.summary  # not a derivative: no core radius
    assert "r_core_normalised" in ig.summary  # but the unit-free variant exists for any method
    assert ig.summary["ig_abs_delta_median"] < 0.05
    sal = result["res"]["saliency"]
    assert {"r_core_over_r500c", "r_core_paper_convention", "pooled_ratio"} <= (
        set(sal.summary) | set(sal.stacks)
    )
    assert sal.summary["paper"]["median_saliency_agn"] == pytest.approx(10**-3.85)


def test_nphot_slope_recovers_the_synthetic_slope(setup) -> None:
    a = setup.arrays
    n_phot = a.images.reshape(len(a), -1).sum(axis=1)
    alpha = nphot_slope(a.log10_m500c, n_phot, a.snapshot)
    assert alpha.shape == (len(a),)
    assert np.unique(alpha).size == np.unique(a.snapshot).size  # one fit per snapshot
    # counts ~ M^1.3 plus a flat background that flattens the slope a little
    assert alpha.min() > 0.9 and alpha.max() < SLOPES["N_phot"] + 0.15


def test_inconsistent_inputs_are_refused(setup) -> None:
    s = setup
    base = (s.states, s.pres, s.arrays, s.folds)
    with pytest.raises(AttributionError, match="pixel for pixel"):
        attribute_population(
            *base, s.cat.counts_agn.transpose(0, 1, 3, 2)[:, :, :, :16], s.cat.counts_icm,
            s.r500c_pix,
        )  # fmt: skip
    with pytest.raises(AttributionError, match=r"folds \[1\] have no model"):
        attribute_population(
            *base, s.cat.counts_agn, s.cat.counts_icm, s.r500c_pix,
            index=np.flatnonzero(s.folds == 1),
        )  # fmt: skip
    with pytest.raises(AttributionError, match="unknown attribution method"):
        attribute_population(
            *base, s.cat.counts_agn, s.cat.counts_icm, s.r500c_pix, methods=("occlusion",)
        )
    with pytest.raises(AttributionError, match="r500c_pix"):
        attribute_population(*base, s.cat.counts_agn, s.cat.counts_icm, s.r500c_pix[:5])


def test_run_directory_round_trip(setup, tmp_path) -> None:
    """A partial run (fold 2 only) on disk -> load_run_models -> attribute -> files."""
    from models.attribution.runs import load_run_models, write_population
    from models.pipeline import run_training

    cfg = tiny_config("single", training={"max_epochs": 1}, cv={"folds": [2]})
    run_dir, cv, _ = run_training(setup.arrays, cfg, tmp_path, n_boot=0)
    rm = load_run_models(run_dir)
    assert set(rm.model_states) == {2} and rm.config.model.kind == "single"
    np.testing.assert_array_equal(rm.folds, cv.folds)
    res = attribute_population(
        rm.model_states, rm.preprocessing, setup.arrays, rm.folds, setup.cat.counts_agn,
        setup.cat.counts_icm, setup.r500c_pix, config=SummaryConfig(n_boot=0), device="cpu",
    )["saliency"]  # fmt: skip
    np.testing.assert_array_equal(
        np.sort(res.per_cluster["cluster_index"]), np.flatnonzero(cv.folds == 2)
    )
    files = write_population(res, tmp_path / "out")
    saved = json.loads(files["json"].read_text())
    assert len(saved["rows"]) == len(res) and saved["summary"]["n_clusters"] == len(res)
    with np.load(files["npz"]) as z:
        np.testing.assert_allclose(z["log10_m_pred"], cv.prediction[z["cluster_index"]], atol=1e-4)
