"""The run directory: provenance, split, per-fold weights that predict() reloads, metrics."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from models.comparison import benchmark_table, table_markdown, write_table_csv
from models.config import RunConfig
from models.data import ClusterArrays
from models.errors import CheckpointError
from models.inference import predict
from models.oracle import ORACLE_LABEL
from models.pipeline import run_training
from models.runio import load_fold
from tests.models.conftest import tiny_config


def test_run_directory_round_trip(arrays32: ClusterArrays, tmp_path) -> None:
    cfg = tiny_config("single", cv={"folds": [0, 3]})
    run_dir, result, metrics = run_training(arrays32, cfg, tmp_path, n_boot=20)
    assert run_dir.name == f"single-{cfg.key()[:12]}"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["run_key"] == cfg.key() and run["versions"]["torch"]
    assert "git_commit" in run and run["devices"] == ["cpu"]
    assert RunConfig.from_config(run_dir / "config.yaml").key() == cfg.key()
    folds = json.loads((run_dir / "folds.json").read_text())
    assert folds["fold"] == result.folds.tolist() and set(folds["validation_index"]) == {"0", "3"}
    with (run_dir / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(arrays32)
    # Reload fold 3 and predict its clusters again: same numbers as predictions.csv.
    loaded = load_fold(run_dir, 3)
    test = np.flatnonzero(result.folds == 3)
    again = predict(loaded.model_state, loaded.preprocessing, arrays32.subset(test))
    saved = np.array([float(rows[i]["log10_m500c_pred"]) for i in test])
    np.testing.assert_allclose(again, saved, atol=2e-6)
    assert metrics["n_clusters"] == int(np.isin(result.folds, [0, 3]).sum())
    assert metrics["sigma_lnM_lo"] <= metrics["sigma_lnM"] <= metrics["sigma_lnM_hi"]
    with pytest.raises(CheckpointError, match="fold 5"):
        load_fold(run_dir, 5)


def test_benchmark_table_rows(arrays32: ClusterArrays, tmp_path) -> None:
    true = arrays32.log10_m500c
    rng = np.random.default_rng(0)
    preds = {"Single-band CNN": true + 0.05 * rng.standard_normal(true.size)}
    rows = benchmark_table(arrays32, preds, oracle=true + 0.01, n_boot=30)
    labels = [r["observable"] for r in rows]
    assert labels[0] == "T" and labels[-2:] == ["Single-band CNN", ORACLE_LABEL]
    by = {r["observable"]: r for r in rows}
    # Synthetic truth: M_gas has 0.1 ln scatter at slope 1.1 -> sigma_lnM ~ 0.09
    assert by["M_gas"]["sigma_lnM"] == pytest.approx(0.1 / 1.1, rel=0.35)
    assert by["Single-band CNN"]["sigma_lnM"] == pytest.approx(0.05 * np.log(10), rel=0.2)
    assert by[ORACLE_LABEL]["bias_dex"] == pytest.approx(0.01)
    assert by[ORACLE_LABEL]["kind"] == "oracle" and by["Single-band CNN"]["kind"] == "cnn"
    assert by["N_gal + N_phot,500c"]["kind"] == "combination" and by["T"]["bias_dex"] is None
    assert by["Single-band CNN"]["paper_sigma_lnM"] == pytest.approx(0.178)
    md = table_markdown(rows)
    assert md.count("\n") == len(rows) + 2 and "| Single-band CNN |" in md
    path = write_table_csv(rows, tmp_path / "t.csv")
    with path.open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


def test_shape_checks() -> None:
    from models.comparison import shape_checks

    def row(name: str, sig: float, bias: float | None = None) -> dict:
        return {"observable": name, "sigma_lnM": sig, "bias_dex": bias}

    rows = [row("L_X", 0.26), row("N_phot", 0.40), row("N_gal", 0.15),
            row("Single-band CNN", 0.18, -0.001), row("Multiband CNN", 0.16, 0.008)]  # fmt: skip
    checks = {c["claim"]: c for c in shape_checks(rows)}
    beat = checks["Single-band CNN beats every observed scalar proxy and L_X"]
    assert beat["holds"] is False and "N_gal" in beat["detail"]
    assert checks["Multiband CNN <= Single-band CNN"]["holds"] is True
    assert checks["|bias| of Multiband CNN < 0.005 dex"]["holds"] is False
    assert checks["Multimodal CNN <= Multiband CNN"]["holds"] is None


def test_every_benchmark_value_lies_inside_its_interval(arrays32: ClusterArrays) -> None:
    # 96 clusters in 3 snapshots: the four-proxy combination fitted in-sample on ~32 clusters
    # per snapshot is biased low, and its resamples lower still: the full-sample value lies
    # above its percentile interval (as in report artifacts). The report shows the
    # bias-corrected value, inside its BCa interval, and says so.
    true = arrays32.log10_m500c
    rng = np.random.default_rng(0)
    preds = {"Single-band CNN": true + 0.05 * rng.standard_normal(true.size)}
    rows = benchmark_table(arrays32, preds, n_boot=200)
    for r in rows:
        assert r["sigma_lnM_lo"] <= r["sigma_lnM"] <= r["sigma_lnM_hi"], r
    by = {r["observable"]: r for r in rows}
    four = by["all four observed scalars"]
    assert four["sigma_lnM_plain"] < four["sigma_lnM_lo"]  # the plain value is outside
    assert four["sigma_lnM"] > four["sigma_lnM_plain"]  # corrected upwards, as the bias
    cnn = by["Single-band CNN"]
    assert cnn["sigma_lnM"] == cnn["sigma_lnM_plain"]  # unbiased: the plain value is kept
    md = table_markdown(rows)
    assert md.count("bias-corrected; full sample") == sum(
        r["sigma_lnM"] != r["sigma_lnM_plain"] for r in rows
    )
    assert f"bias-corrected; full sample {100 * four['sigma_lnM_plain']:.2f}" in md


def test_benchmark_with_a_fold_ensemble_row(arrays32: ClusterArrays, tmp_path) -> None:
    """``single_ensemble`` trains several seeds per fold and is its own row and run."""
    from models.comparison import ENSEMBLE_SUFFIX
    from models.errors import DataError
    from models.pipeline import run_benchmark, split_estimator
    from models.results_table import results_rows

    configs = {
        "single": tiny_config("single"),
        "single_ensemble": tiny_config("single", ensemble=2),
    }
    res = run_benchmark(
        arrays32, tmp_path, configs=configs, models=["single", "single_ensemble"], n_boot=20
    )
    ens_label = "Single-band CNN" + ENSEMBLE_SUFFIX
    assert set(res.predictions) == {"Single-band CNN", ens_label}
    assert set(res.run_dirs) == {"single", "single_ensemble"}
    assert res.run_dirs["single"] != res.run_dirs["single_ensemble"]
    assert RunConfig.from_config(res.run_dirs["single_ensemble"] / "config.yaml").ensemble == 2
    # fold 0 only: the same clusters predicted by both, differently (other seeds, a mean of two)
    a, b = res.predictions["Single-band CNN"], res.predictions[ens_label]
    assert np.array_equal(np.isfinite(a), np.isfinite(b)) and np.isfinite(a).any()
    assert not np.allclose(a[np.isfinite(a)], b[np.isfinite(b)])
    names = [r.estimator for r in results_rows("paper", res.rows)]
    assert names[-3:] == ["single", "single_ensemble", "oracle"]
    assert split_estimator("multimodal_ensemble") == ("multimodal", True)
    with pytest.raises(DataError, match="expected one of"):
        split_estimator("resnet")
    with pytest.raises(DataError, match="at least 2 members"):
        run_benchmark(
            arrays32,
            tmp_path / "x",
            configs={"single_ensemble": tiny_config("single")},
            models=["single_ensemble"],
        )


def test_resume_reads_back_finished_folds_and_trains_only_the_rest(
    arrays32: ClusterArrays, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run interrupted after some folds (here: folds 0 and 3 trained "elsewhere", in a run of
    only those folds written into the full run's directory) is completed by resume=True: the
    finished folds are read back bit for bit, only the missing ones are trained, and the result
    equals a run trained in one sitting."""
    import models.crossval as crossval
    from models.crossval import cross_validate
    from models.runio import read_fold_result, run_dir_name, write_fold

    cfg = tiny_config("single", cv={"folds": [0, 3, 5]})
    run_dir = tmp_path / "resumed" / run_dir_name(cfg)
    run_dir.mkdir(parents=True)
    part = cfg.model_copy(update={"cv": cfg.cv.model_copy(update={"folds": [0, 3]})})
    first = cross_validate(arrays32, part, on_fold=lambda r: write_fold(run_dir, r))
    # A fold whose folder lacks split.npz (interrupted while written) is trained again.
    (run_dir / "fold_5_m0").mkdir()
    (run_dir / "fold_5_m0" / "history.json").write_text("{}")
    assert read_fold_result(run_dir, 5) is None
    back = read_fold_result(run_dir, 3)
    assert back is not None and back.fold == 3 and back.device == "cpu"
    hist = json.loads((run_dir / "fold_3_m0" / "history.json").read_text())
    assert hist["torch"] and hist["python"] and "host" in hist  # where the fold ran
    assert np.array_equal(back.test_prediction, first.fold_results[1].test_prediction)
    assert back.history["best_epoch"] == first.fold_results[1].history["best_epoch"]

    trained: list[int] = []
    real = crossval.train_fold

    def counting(arrays, config, fold, **kw):  # noqa: ANN001, ANN202
        trained.append(fold)
        return real(arrays, config, fold, **kw)

    monkeypatch.setattr(crossval, "train_fold", counting)
    _, resumed, _ = run_training(arrays32, cfg, tmp_path / "resumed", n_boot=10, resume=True)
    assert trained == [5]
    monkeypatch.setattr(crossval, "train_fold", real)
    _, whole, _ = run_training(arrays32, cfg, tmp_path / "whole", n_boot=10)
    np.testing.assert_array_equal(resumed.prediction, whole.prediction)
    assert (tmp_path / "resumed" / run_dir_name(cfg) / "metrics.json").is_file()


def test_a_resumed_ensemble_takes_member_0_from_the_single_run(
    arrays32: ClusterArrays, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Member 0 of an ensemble has the single run's seed, split and settings: resuming the
    ensemble next to the finished single run trains only members 1.., copies member 0 in, and
    gives what training every member would."""
    import models.crossval as crossval
    from models.runio import read_fold_result, run_dir_name

    single = tiny_config("single", cv={"folds": [2, 6]})
    ensemble = single.model_copy(update={"ensemble": 2})
    run_training(arrays32, single, tmp_path / "out", n_boot=10)
    trained: list[tuple[int, int]] = []
    real = crossval.train_fold

    def counting(arrays, config, fold, **kw):  # noqa: ANN001, ANN202
        trained.append((fold, kw.get("member", 0)))
        return real(arrays, config, fold, **kw)

    monkeypatch.setattr(crossval, "train_fold", counting)
    run_dir, resumed, _ = run_training(arrays32, ensemble, tmp_path / "out", n_boot=10, resume=True)
    assert trained == [(2, 1), (6, 1)]
    copied = read_fold_result(run_dir, 6, 0)
    original = read_fold_result(tmp_path / "out" / run_dir_name(single), 6, 0)
    assert copied is not None and original is not None
    np.testing.assert_array_equal(copied.test_prediction, original.test_prediction)
    monkeypatch.setattr(crossval, "train_fold", real)
    _, whole, _ = run_training(arrays32, ensemble, tmp_path / "whole", n_boot=10)
    np.testing.assert_array_equal(resumed.prediction, whole.prediction)


def test_resume_refuses_folds_of_another_catalogue(arrays32: ClusterArrays, tmp_path) -> None:
    """Fold folders whose test clusters are not this catalogue's fold (the run directory was
    written for another catalogue with the same config) are refused, not silently mixed in."""
    from models.errors import ModelConfigError

    cfg = tiny_config("single", cv={"folds": [3]})
    run_training(arrays32, cfg, tmp_path, n_boot=10)
    other = arrays32.subset(np.arange(1, len(arrays32)))  # every index shifts by one
    with pytest.raises(ModelConfigError, match="another catalogue"):
        run_training(other, cfg, tmp_path, n_boot=10, resume=True)


def test_cluster_arrays_npz_round_trip(arrays32: ClusterArrays, tmp_path) -> None:
    """save_npz/load_npz: every array back exactly (counts stored narrow, read as they were)."""
    from dataclasses import replace

    from models.errors import DataError

    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0, arrays32.images.shape).astype(np.int32)
    a = replace(arrays32, images=counts, cluster_id=np.arange(len(arrays32)) + 100)
    path = a.save_npz(tmp_path / "a.npz")
    with np.load(path) as z:
        assert z["images"].dtype == np.uint8  # 3-count Poisson maps fit in a byte
    b = ClusterArrays.load_npz(path)
    assert b.images.dtype == np.int32 and np.array_equal(a.images, b.images)
    for name in ("redshift", "log10_m500c", "positions", "snapshot", "cluster_id"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert set(a.scalars) == set(b.scalars)
    assert all(np.array_equal(a.scalars[k], b.scalars[k]) for k in a.scalars)
    if a.galaxies is not None:
        assert np.array_equal(a.galaxies.offsets, b.galaxies.offsets)
        assert np.array_equal(a.galaxies.v, b.galaxies.v)
    # Non-integer images are kept as they are; KDE cubes travel too.
    c = replace(a, images=a.images + 0.5, kde_cubes=rng.random((len(a), 4, 4, 4)))
    d = ClusterArrays.load_npz(c.save_npz(tmp_path / "c.npz", compress=False))
    assert np.array_equal(c.images, d.images) and np.array_equal(c.kde_cubes, d.kde_cubes)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz"):
        ClusterArrays.load_npz(tmp_path / "bad.npz")


def test_a_proxy_rows_n_counts_the_clusters_it_could_use(arrays32: ClusterArrays) -> None:
    """Background-subtracted counts <= 0 cannot enter a log: those clusters leave the row, and
    its N says so (the other rows keep every cluster)."""
    from dataclasses import replace

    from models.comparison import shape_checks

    true = arrays32.log10_m500c
    rng = np.random.default_rng(3)
    net = 10 ** (0.9 * (true - 13.5)) * 50 * np.exp(0.2 * rng.standard_normal(true.size)) - 20
    net[:5] = [-3.0, 0.0, -1.0, np.nan, -7.0]
    scalars = {**arrays32.scalars, "N_phot_500c_bkgsub": net}
    rows = benchmark_table(replace(arrays32, scalars=scalars), {}, n_boot=20)
    by = {r["observable"]: r for r in rows}
    usable = int(np.sum(np.isfinite(net) & (net > 0)))
    assert usable < len(true) - 4
    assert by["N_phot within R500c, background subtracted"]["n"] == usable
    assert by["M_gas"]["n"] == len(true)
    cnn = {"observable": "Single-band CNN", "sigma_lnM": 1e-3, "bias_dex": 0.0}
    beat = shape_checks([*rows, cnn])[0]
    assert beat["holds"] is True  # and the subtracted row is among the rivals checked
    worse = shape_checks([*rows, {**cnn, "sigma_lnM": 10.0}])[0]["detail"]
    assert "N_phot within R500c, background subtracted" in worse
