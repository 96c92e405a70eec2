"""The benchmark runner: report assembly on fake measurements (no timing), options, guards.

One end-to-end test runs ``python -m benchmarks --quick --only mocks`` for real. Nothing here
asserts on a timing: the fake measurements are fixed inputs and the assertions are on what the
report says about them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks import machine, report, runner
from benchmarks.errors import BenchmarkError

ROOT = Path(__file__).resolve().parents[1]
HEADINGS = [h for h, *_ in report.SECTIONS.values()]
MACHINE = {
    "date_start": "2026-11-25T10:00:00+00:00",
    "date_end": "2026-11-25T10:40:00+00:00",
    "cpu_model": "Test CPU 9000",
    "cpu_flags": ["avx2"],
    "logical_cores": 2,
    "usable_cores": 2,
    "ram_gib": 23.5,
    "load_avg_start": [0.4, 0.5, 0.6],
    "load_avg_end": [0.7, 0.6, 0.5],
    "os": "Linux-test",
    "python": "3.11.7",
    "versions": {"torch": "2.13.0+cpu", "numpy": "2.4.6", "sqlalchemy": "2.1.9"},
    "postgresql": {"version": "PostgreSQL 15.20 (test)", "settings": {"work_mem": "4MB"}},
    "gpu": None,
    "git_commit": "abc1234",
}


def _mocks() -> dict[str, Any]:
    return {
        "params": {"n": 3300, "seed": 1, "baseline_n": 400}, "threads": 1, "n_clusters": 3300,
        "generate_s": 15.0, "clusters_per_s_per_core": 220.0, "baseline_n": 400,
        "baseline_s": 6.0, "baseline_clusters_per_s": 66.7, "speedup_vs_baseline": 3.3,
        "write_s": 20.0, "write_files_per_s": 165.0, "read_s": 10.0, "read_files_per_s": 330.0,
        "mean_photons_per_cluster": 12000.0,
    }  # fmt: skip


def _ingest() -> dict[str, Any]:
    rows = 3300 + 128_700 + 13_200
    cases = [
        ("raw COPY of the same rows (lower bound)", "baseline", 2.0),
        ("ingest_mock_directory, first ingest: total", "total", 40.0),
        ("ingest_mock_directory, first ingest: database writes", "db", 25.0),
    ]
    return {
        "params": {"n": 3300, "seed": 1}, "n_clusters": 3300, "truth_columns": 50,
        "rows": {"catalogues": 1, "clusters": 3300, "observables": 128_700, "products": 13_200,
                 "total": rows},
        "copy_bytes": 12 * 2**20, "generate_s": 15.0, "write_s": 20.0, "migrate_s": 3.0,
        "store_s": {"first": 15.0, "rerun": 12.0},
        "cases": [{"name": n, "kind": k, "seconds": s, "rows_per_s": rows / s,
                   "ratio": 2.0 / s} for n, k, s in cases],
    }  # fmt: skip


def _train(keras: bool = True) -> dict[str, Any]:
    med = {"nchw": 40.0, "channels_last": 60.0, "channels_last+micro10": 80.0}
    if keras:
        med["keras"] = 32.0
    return {
        "params": {"rounds": 3, "steps": 10, "repeats": 3, "threads": 2,
                   "variants": ["nchw", "channels_last", "channels_last+micro10"],
                   "keras_python": "/nowhere/python", "device": "cpu"},
        "threads": 2, "device": "cpu", "batch": 50, "median_best_img_per_s": med,
        "per_round_best": {k: [v, v] for k, v in med.items()},
        "keras_status": "measured" if keras else runner_keras_missing(),
        "keras_meta": {"tf": "2.21.0", "keras": "3.15.1", "gpus": 0} if keras else {},
        "ratio_vs_keras": {k: v / 32.0 for k, v in med.items() if k != "keras"} if keras else None,
        "omp_wait_policy": "PASSIVE",
    }  # fmt: skip


def runner_keras_missing() -> str:
    return "not measured (no tensorflow venv at /nowhere/python; see --keras-python)"


def _inference(device: str = "cpu") -> dict[str, Any]:
    res = []
    for batch, cl, rate in ((1, False, 100.0), (1, True, 120.0), (10, True, 350.0)):
        res.append({"model": "single", "batch": batch, "channels_last": cl, "maps_per_s": rate,
                    "ratio": rate / 100.0, "n_maps": 64})  # fmt: skip
    return {"params": {"n": 512, "device": device}, "threads": 2, "device": device,
            "results": res}  # fmt: skip


def _sql(big: int = 1_000_000) -> dict[str, Any]:
    small, paper = 100_000, 3285
    p50 = {big: 1000.0, small: 90.0, paper: 4.0}
    rows = []

    def add(query: str, kind: str, size: int | None, value: float) -> None:
        rows.append({"query": query, "kind": kind, "run_size": size, "runs": 20, "p50": value,
                     "p90": value * 1.1, "p99": value * 1.2, "min": value * 0.8,
                     "ratio": value / p50[size] if size else None})  # fmt: skip

    for n in (big, small, paper):
        add(f"scatter_by_mass, run of {n:,}", "function", n, p50[n])
        add(f"scatter_by_z, run of {n:,}", "function", n, p50[n] * 1.02)
        add(f"scatter_by_mass_z, run of {n:,}", "function", n, p50[n] * 1.6)
    add("v_scatter_summary, all runs, axis 'mass' (materialised)", "summary", None, 0.3)
    add(f"scatter_by_mass, run of {big:,}, `SET work_mem`", "tuned", big, 700.0)
    for n in (big, small, paper):
        add(f"mass bins via JOIN clusters, run of {n:,}", "baseline 1", n, p50[n] * 8)
        add(f"scatter_by_mass, run of {n:,}, no covering indexes", "baseline 3", n, p50[n] * 2)
    add(f"client fetch + numpy, run of {big:,}", "baseline 2", big, 3300.0)
    return {
        "params": {"n_predictions": big, "small_run": small, "paper_run": paper, "repeats": 50,
                   "big_repeats": 20, "seed": 2023},
        "n_clusters": big, "n_predictions_total": big + small + paper, "migrate_s": 3.0,
        "copy_clusters_s": 10.0, "copy_predictions_s": 90.0, "vacuum_analyze_s": 5.0,
        "refresh_results_s": 4.6,
        "trigger_write_cost_s": {"with trigger": 8.9, "without trigger": 6.7},
        "server": {"version": "PostgreSQL 15.20 (test)", "settings": {"jit": "on"}},
        "rows": rows,
    }  # fmt: skip


def _entry(key: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "command": f"python benchmarks/{key}.py --fake", "data": data}


def _run(quick: bool = False, device: str = "cpu", **results: dict[str, Any]) -> dict[str, Any]:
    if not results:
        results = {
            "mocks": _entry("mocks", _mocks()),
            "ingest": _entry("ingest", _ingest()),
            "train": _entry("train", _train()),
            "inference": _entry("inference", _inference()),
            "sql": _entry("sql", _sql()),
        }
    return {
        "machine": MACHINE,
        "options": {"quick": quick, "only": list(results), "device": device,
                    "command": "python -m benchmarks"},
        "elapsed_s": 2400.0, "results": results,
    }  # fmt: skip


def test_full_report_has_every_section_and_the_machine() -> None:
    text = report.render([_run()])
    assert text.startswith("<!-- benchmarks: quick=0 complete=1")
    for heading in ["Machine", "Summary", *HEADINGS]:
        assert f"\n## {heading}\n" in text
    # the machine description
    for fact in ("Test CPU 9000", "2 logical, 2 usable", "23.5 GiB", "0.40 / 0.50 / 0.60",
                 "0.70 / 0.60 / 0.50", "PostgreSQL 15.20 (test)", "2.13.0+cpu", "2.4.6",
                 "2026-11-25T10:00:00+00:00", "abc1234"):  # fmt: skip
        assert fact in text, fact
    assert "**No GPU measured.**" in text
    assert "QUICK RUN" not in text
    assert "Shared and busy" not in text  # load 0.7 on 2 cores
    # each section has what / command / results, and ratios against its in-run baseline
    assert text.count("**What.**") == 5
    assert text.count("**Command.**") == 5
    assert "| generator, full product | 3,300 | 15.00 | **220** | **3.30** |" in text
    assert "| raw COPY of the same rows (lower bound) | 2.00 | 72,600 | 1.00 |" in text
    assert "| ingest_mock_directory, first ingest: total | 40.00 | 3,630 | 0.05 |" in text
    assert "**2.50**" in text  # 80 / 32 images/s vs Keras
    assert "| single-band CNN | 10 | channels_last | 64 | 350 | 3.50 |" in text
    # the SQL target and design statements follow the data
    assert "run of 1,000,000: 1,000.0-1,020.0 ms p50 per axis" in text
    assert "**not met**" in text and "run of 100,000: 90.0-91.8 ms p50 per axis" in text
    assert "percentile_cont" in text  # the explanation when the big run misses the target
    assert "was 8.0x faster than baseline 1 (join); 2.0x faster than baseline 3" in text


def test_quick_run_is_marked_and_busy_machine_noted() -> None:
    run = _run(quick=True)
    run["machine"] = {**MACHINE, "load_avg_start": [5.2, 4.0, 3.0]}
    text = report.render([run])
    assert text.startswith("<!-- benchmarks: quick=1 complete=1")
    assert "QUICK RUN (`--quick`)" in text and "not representative" in text
    assert "Shared and busy" in text and "0.7-5.2 on 2 cores" in text


def test_small_sql_table_does_not_claim_the_target() -> None:
    text = report.render([_run(sql=_entry("sql", _sql(big=200_000)))])
    assert "does not test the target" in text
    assert "**met**" not in text and "**not met**" not in text
    assert "**Design choices the numbers support.**" in text


def test_sql_design_statement_follows_the_numbers() -> None:
    data = _sql()
    for row in data["rows"]:
        if row["kind"] == "baseline 3":  # the baseline faster than the functions
            row["p50"] /= 4
    text = report.render([_run(sql=_entry("sql", data))])
    assert "**Design choices against the numbers**" in text
    assert "0.5x faster than baseline 3" in text


def test_keras_missing_failed_and_partial_runs() -> None:
    run = _run(
        mocks={"status": "failed", "command": "python benchmarks/bench_mocks.py", "error": "boom"},
        train=_entry("train", _train(keras=False)),
    )
    text = report.render([run])
    assert text.startswith("<!-- benchmarks: quick=0 complete=0")
    assert runner_keras_missing() in text
    assert "**Failed.**" in text and "boom" in text
    assert text.count("Not run in this invocation") == 3  # ingest, inference, sql
    for heading in HEADINGS:
        assert f"\n## {heading}\n" in text


def test_merged_cpu_and_gpu_runs() -> None:
    gpu_machine = {**MACHINE, "gpu": {"name": "NVIDIA H100", "memory_gib": 79.6,
                                      "capability": "9.0", "cuda": "12.8", "count": 1}}  # fmt: skip
    on_gpu = _inference("cuda")
    on_gpu["gpu"] = "NVIDIA H100"
    on_gpu["resident"] = [
        {"model": "single", "batch": 4096, "precision": p, "maps_per_s": r}
        for p, r in (("fp32", 50_000.0), ("bf16", 125_000.0))
    ]
    gpu = _run(device="cuda", inference=_entry("inference", on_gpu))
    gpu["machine"] = gpu_machine
    text = report.render([_run(), gpu])
    assert "**On the device** (NVIDIA H100)" in text
    assert "| single-band CNN | 4096 | bf16 | 125,000 | 2.50 |" in text
    assert "No GPU measured" not in text
    assert "NVIDIA H100 (79.6 GiB" in text
    assert "### run 1: cpu, 2026-11-25, Test CPU 9000" in text
    assert "### run 2: cuda, 2026-11-25, NVIDIA H100" in text
    assert "| run 1: cpu, 2026-11-25, Test CPU 9000 | run 2: cuda" in text


def test_check_target_protects_full_reports(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    runner.check_target(out, quick=True, complete=False, force=False)  # absent: fine
    out.write_text("# Benchmarks\nhand-written numbers\n")
    with pytest.raises(BenchmarkError, match="--quick.*--out PATH"):
        runner.check_target(out, quick=True, complete=True, force=False)
    with pytest.raises(BenchmarkError, match="partial"):
        runner.check_target(out, quick=False, complete=False, force=False)
    runner.check_target(out, quick=False, complete=True, force=False)  # full replaces full
    runner.check_target(out, quick=True, complete=True, force=True)
    out.write_text(report.render([_run(quick=True)]))
    runner.check_target(out, quick=True, complete=False, force=False)  # quick over quick


def test_options_and_arguments() -> None:
    assert runner.parse_only("sql, mocks") == ["mocks", "sql"]
    assert runner.parse_only(None) == list(runner.BENCHMARKS)
    with pytest.raises(BenchmarkError, match="choose from.*'ingest'"):
        runner.parse_only("mocks,gpu")
    quick = runner.RunOptions(quick=True, device="cpu", keras_python="/k/python", threads=3)
    full = runner.RunOptions(device="cuda")
    train = runner.BENCHMARKS["train"]
    q_args, f_args = runner.benchmark_args(train, quick), runner.benchmark_args(train, full)
    assert q_args[q_args.index("--steps") + 1] == "2" and "/k/python" in q_args
    assert q_args[q_args.index("--threads") + 1] == "3"
    assert f_args[f_args.index("--device") + 1] == "cuda"
    assert "channels_last+amp" in f_args[f_args.index("--variants") + 1]
    mocks = runner.benchmark_args(runner.BENCHMARKS["mocks"], runner.RunOptions())
    assert mocks[mocks.index("--n") + 1] == "3300" and "--device" not in mocks
    assert runner.RunOptions(out=Path("x/b.md")).json_path == Path("x/b.json")
    assert quick.command_line() == "python -m benchmarks --quick --device cpu --threads 3"


def test_execute_writes_report_and_json_then_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = {"mocks": _mocks(), "sql": _sql()}

    def run_one(bench: runner.Benchmark, options: runner.RunOptions, workdir: Path) -> dict:
        return _entry(bench.key, fake[bench.key])

    monkeypatch.setattr(runner, "run_one", run_one)
    seen: list[tuple[str, int, int]] = []
    cpu = runner.RunOptions(only=["mocks", "sql"], out=tmp_path / "a.md")
    runs = runner.execute(cpu, lambda *a: seen.append(a))
    assert seen[0] == ("mocks", 0, 2) and seen[-1] == ("done", 2, 2)
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["format"] == runner.JSON_FORMAT and len(saved["runs"]) == 1
    assert saved["runs"][0]["machine"]["logical_cores"] >= 1
    assert runs[0]["results"]["mocks"]["status"] == "ok"
    # a later run merged with the saved one, and a re-render from the merged JSON
    later = runner.RunOptions(only=["mocks"], out=tmp_path / "b.md", merge=[tmp_path / "a.json"])
    assert len(runner.execute(later)) == 2
    again = runner.RunOptions(out=tmp_path / "c.md", merge=[tmp_path / "b.json"], render_only=True)
    assert len(runner.execute(again)) == 2
    assert (tmp_path / "c.md").read_text().count("### run 2: cpu") == 1  # mocks only in run 2
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(BenchmarkError, match="not a results file"):
        runner.load_runs([tmp_path / "bad.json"])


def test_results_json_is_saved_after_each_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped after its first benchmark (a GPU lease ending, a timeout) keeps it."""
    fake = {"mocks": _mocks()}

    def run_one(bench: runner.Benchmark, options: runner.RunOptions, workdir: Path) -> dict:
        if bench.key == "sql":
            raise KeyboardInterrupt  # the process is stopped during the second benchmark
        return _entry(bench.key, fake[bench.key])

    monkeypatch.setattr(runner, "run_one", run_one)
    options = runner.RunOptions(only=["mocks", "sql"], out=tmp_path / "a.md")
    with pytest.raises(KeyboardInterrupt):
        runner.execute(options)
    saved = json.loads((tmp_path / "a.json").read_text())
    assert list(saved["runs"][0]["results"]) == ["mocks"]
    assert saved["runs"][0]["results"]["mocks"]["status"] == "ok"
    assert not (tmp_path / "a.md").exists()  # the report is rendered from complete runs only
    # and the partial JSON renders with --merge
    again = runner.RunOptions(out=tmp_path / "b.md", merge=[tmp_path / "a.json"], render_only=True)
    assert len(runner.execute(again)) == 1


def test_machine_description(admin_url: str) -> None:
    desc = machine.finish(machine.describe(admin_url))
    assert desc["cpu_model"] and desc["logical_cores"] >= 1 and desc["ram_gib"] > 0
    assert len(desc["load_avg_start"]) == 3 and len(desc["load_avg_end"]) == 3
    assert "PostgreSQL" in desc["postgresql"]["version"]
    assert desc["versions"]["torch"].startswith("2.13") and desc["gpu"] is None


def test_cli_bench_renders_and_rejects_bad_options(tmp_path: Path) -> None:
    from cli.main import app

    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"format": runner.JSON_FORMAT, "runs": [_run()]}))
    out = tmp_path / "report.md"
    cli = CliRunner()
    res = cli.invoke(app, ["bench", "--render-only", "--merge", str(saved), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Mock generation" in res.output and "3.30" in res.output
    assert out.read_text() == report.render([_run()])
    res = cli.invoke(app, ["bench", "--device", "tpu", "--out", str(out)])
    assert res.exit_code == 2 and "choose 'cpu' or 'cuda'" in res.output
    res = cli.invoke(app, ["bench", "--only", "nope", "--out", str(out)])
    assert res.exit_code == 2 and "choose from" in res.output


def test_quick_mocks_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "mocks", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert "QUICK RUN" in text and "## Mock generation" in text
    assert "python benchmarks/bench_mocks.py --n 40" in text
    assert text.count("Not run in this invocation") == 4
    data = json.loads(out.with_suffix(".json").read_text())["runs"][0]["results"]["mocks"]
    assert data["status"] == "ok"
    m = data["data"]
    # the rates are the counts over the times the run measured
    assert m["n_clusters"] == 40 and m["baseline_n"] == 10
    assert m["clusters_per_s_per_core"] == pytest.approx(40 / m["generate_s"])
    assert m["speedup_vs_baseline"] == pytest.approx(
        m["clusters_per_s_per_core"] / m["baseline_clusters_per_s"]
    )
    assert m["mean_photons_per_cluster"] > 0


def test_train_benchmark_measures_bf16_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a CPU with native bf16 the default train-step variants include bf16 autocast, so the
    bf16 ratio is measured in the same run (issue 19); elsewhere it is left out (emulated)."""
    from benchmarks import bench_train_step as bench

    monkeypatch.setattr(bench, "cpu_has_native_bf16", lambda: True)
    names = bench.default_variants("cpu")
    assert names[-1] == "trainer"  # the trainer's own defaults, measured in the same run
    assert {"channels_last+micro10+bf16", "channels_last+bf16"} <= set(names)
    assert bench.VARIANTS["channels_last+micro10+bf16"]["precision"] == "bf16"
    assert "channels_last+micro10+bf16" not in bench.default_variants("cuda")
    monkeypatch.setattr(bench, "cpu_has_native_bf16", lambda: False)
    assert bench.default_variants("cpu") == list(bench.DEFAULT_VARIANTS)


def test_device_fold_runs_land_in_the_full_benchmarks_run_directories() -> None:
    """Folds trained on a GPU host (run_device_folds.py) are resumed by run_full_benchmark.py
    only if both build the same RunConfig: same key, same run directory name."""
    from benchmarks.run_device_folds import job_config
    from benchmarks.run_full_benchmark import CONFIGS, ROOT
    from models.config import RunConfig
    from models.runio import run_dir_name

    for kind, name in CONFIGS.items():
        full = RunConfig.from_config(ROOT / "configs" / name, training={"device": "auto"})
        assert run_dir_name(job_config(kind)) == run_dir_name(full)
    ens = job_config("single_ensemble", ensemble=3)
    assert ens.ensemble == 3 and ens.model.kind == "single"
    assert job_config("single_gaussian").model.args["head"] == "gaussian"


def test_train_report_spells_out_the_trainers_defaults() -> None:
    """The ``trainer`` variant's row says what the trainer resolved to in that run."""
    from benchmarks.report_sections import variant_text

    d = _train()
    d["trainer_settings"] = {"channels_last": True, "micro_batch": None, "precision": "bf16"}
    assert variant_text(d, "trainer") == (
        "torch, the trainer's defaults (channels_last, full batch, bf16 autocast)"
    )
    d["trainer_settings"] = {"channels_last": True, "micro_batch": 10, "precision": "fp32"}
    assert variant_text(d, "trainer").endswith("(channels_last, micro-batches of 10, fp32)")
    assert variant_text(d, "nchw") == "torch, NCHW (default memory format)"
