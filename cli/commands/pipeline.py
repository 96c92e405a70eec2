"""Service commands: each runs a Prefect flow (tasks on Celery workers, or in-process).

``simulate`` (mock -> ingest), ``fit`` (cross-validated training), ``predict``, ``attribute``,
``report``, ``serve`` (scheduled deployments) and ``demo`` (the whole chain on a small mock).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table
from rich.text import Text

from astro.numbers import format_interval, format_number
from cli import prefect_runs
from cli.commands._common import cli_errors, console, err_console, plain
from cli.commands._progress import show_progress
from services.jobs.params import AttributeParams

__all__ = ["simulate", "fit", "predict", "attribute", "report", "serve", "demo"]

_KINDS = ("single", "multi", "multimodal")


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _fmt(value: Any, pct: bool = False) -> str:
    """Format a table number (:func:`astro.numbers.format_number`): percent with 2 decimals.

    Small values keep 3 significant digits: saliency medians of ~1e-4 must not print as
    ``0.0001 [0.0001, 0.0001]``.
    """
    if pct:
        return format_number(value, decimals=2, scale=100)
    return format_number(value)


def print_benchmark(rows: list[dict[str, Any]], title: str) -> None:
    """Rich table of the benchmark rows (sigma_lnM in percent, as the paper)."""
    table = Table(title=plain(title))
    for col in ("observable", "sigma_lnM [%]", "68% interval", "bias [dex]", "paper [%]"):
        table.add_column(plain(col), justify="left" if col == "observable" else "right")
    for r in rows:
        cells = (
            r["observable"],
            _fmt(r.get("sigma_lnM"), pct=True),
            f"{_fmt(r.get('sigma_lnM_lo'), True)} - {_fmt(r.get('sigma_lnM_hi'), True)}",
            _fmt(r.get("bias_dex")),
            _fmt(r.get("paper_sigma_lnM"), pct=True),
        )
        table.add_row(*map(plain, cells))
    console.print(table)


def print_bins(bins: list[dict[str, Any]], title: str) -> None:
    """Rich table of scatter-by-bin rows."""
    table = Table(title=plain(title))
    for col in ("bin", "N", "bias [dex]", "sigma_lnM", "p16", "p50", "p84"):
        table.add_column(plain(col), justify="right")
    for b in bins:
        if b.get("mass_lo") is not None:
            label = f"{b['mass_lo']:.2f} <= log M < {b['mass_hi']:.2f}"
        else:
            label = f"{b['z_lo']:.2f} <= z < {b['z_hi']:.2f}"
        cells = (
            label,
            str(b["n"]),
            _fmt(b.get("bias_dex")),
            _fmt(b.get("sigma_lnm")),
            _fmt(b.get("p16_dex")),
            _fmt(b.get("p50_dex")),
            _fmt(b.get("p84_dex")),
        )
        table.add_row(*map(plain, cells))
    console.print(table)


@cli_errors
def simulate(
    n: Annotated[int, typer.Option("--n", help="Number of clusters")] = 3300,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    out: Annotated[
        Path | None, typer.Option(help="Mock directory (default in the data dir)")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Catalogue name (default from seed/size)")
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Mock preset: erass (backgrounds) or paper (ICM + AGN only)")
    ] = "erass",
) -> None:
    """Generate a mock catalogue and ingest it (flow ingest-simulation; idempotent)."""
    prefect_runs.prepare()
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from flows.simulate import ingest_simulation

    with show_progress():
        summary = prefect_runs.announced(ingest_simulation)(
            n_clusters=n, seed=seed, mock_dir=str(out) if out else None, catalogue_name=name,
            preset=preset,
        )  # fmt: skip
    console.print(
        Text.assemble(
            "catalogue ",
            (str(summary["catalogue_name"]), "bold"),
            f" (id {summary['catalogue_id']}): "
            f"{summary['n_clusters']} clusters, {summary['n_observables']} observables, "
            f"{summary['n_products']} products",
        )
    )


@cli_errors
def fit(
    catalogue: Annotated[
        str | None, typer.Option(help="Catalogue name or id (an ingested simulation)")
    ] = None,
    models: Annotated[
        str, typer.Option(help="Comma-separated networks")
    ] = "single,multi,multimodal",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML run config")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override training.max_epochs")] = None,
    resume: Annotated[
        int | None,
        typer.Option(
            help="Resume run RUN fold by fold (cancelled, failed, or left running by a dead "
            "process: `clustermass runs recover`); its finished folds are kept"
        ),
    ] = None,
) -> None:
    """Cross-validated training of the networks on an ingested catalogue (flow train-models).

    Shows a progress bar per fold (epoch, loss, validation loss, ETA); Ctrl-C revokes the
    run's Celery tasks and marks the run cancelled.
    """
    if (catalogue is None) == (resume is None):
        raise FitArgumentsError("give --catalogue NAME (a new fit) or --resume RUN, not both")
    prefect_runs.prepare()
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from flows.train import resume_training, train_models

    overrides = {"training": {"max_epochs": epochs}} if epochs else None
    try:
        with show_progress():
            if resume is not None:
                runs = [prefect_runs.announced(resume_training)(resume)]
            else:
                runs = prefect_runs.announced(train_models)(
                    catalogue, _split(models), str(config) if config else None, overrides
                )
    except KeyboardInterrupt:
        err_console.print(
            plain("cancelled: the run's Celery tasks are revoked and the run is marked cancelled;"
                  " resume it with `clustermass fit --resume RUN`")
        )  # fmt: skip
        raise typer.Exit(130) from None
    table = Table(title=plain(f"runs on {catalogue}" if catalogue else f"run {resume}"))
    for col in ("kind", "run", "status", "N", "sigma_lnM", "bias [dex]"):
        table.add_column(plain(col))
    for r in runs:
        cells = (
            r["kind"],
            str(r["run_id"]),
            r["status"],
            str(r["n"]),
            _fmt(r.get("sigma_lnM")),
            _fmt(r.get("bias_dex")),
        )
        table.add_row(*map(plain, cells))
    console.print(table)


class FitArgumentsError(ValueError):
    """``clustermass fit`` needs exactly one of --catalogue and --resume."""


@cli_errors
def predict(
    run: Annotated[int, typer.Option(help="Model run id")],
    catalogue: Annotated[str, typer.Option(help="Catalogue name or id")],
) -> None:
    """Predict a catalogue's masses with a trained run (flow predict)."""
    prefect_runs.prepare()
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from flows.estimate import predict as flow

    with show_progress():
        out = prefect_runs.announced(flow)(run, catalogue)
    console.print(
        plain(
            f"run {run} on {out['catalogue']}: {out['n_predicted']} predicted, "
            f"{out['n_skipped']} already predicted or skipped"
        )
    )
    if out["rows"]:
        table = Table(title="predictions")
        cols = ("cluster", "status", "instrument", "log10 M500c pred", "spread", "area x",
                "uncorrected", "catalogue")  # fmt: skip
        for col in cols:
            table.add_column(plain(col))
        for r in out["rows"]:
            cells = (
                r["cluster"] or "",
                r["status"],
                r.get("instrument", ""),
                _fmt(r.get("log10_m500c_pred")),
                _fmt(r.get("fold_spread_dex")),
                _fmt(r.get("count_rate_scale")),
                _fmt(r.get("log10_m500c_pred_uncorrected")),
                _fmt(r.get("log10_m500c_catalogue"))
                if r["status"] == "predicted"
                else r.get("reason", ""),
            )
            table.add_row(*map(plain, cells))
        console.print(table)
    for caveat in out["caveats"]:
        console.print(Text.assemble(("caveat:", "yellow"), " ", plain(caveat)))


@cli_errors
def attribute(
    run: Annotated[int, typer.Option(help="Model run id")],
    methods: Annotated[
        str, typer.Option(help="saliency, integrated_gradients, smoothgrad")
    ] = "saliency",
    max_clusters: Annotated[int | None, typer.Option(help="Random subset size (seeded)")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples")] = 1000,
) -> None:
    """Saliency maps and their population summaries for a run (flow attribute)."""
    prefect_runs.prepare()
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from flows.estimate import attribute as flow

    params = AttributeParams(
        run_id=run, methods=tuple(_split(methods)), max_clusters=max_clusters, n_boot=n_boot
    )
    with show_progress():
        out = prefect_runs.announced(flow)(params)
    for method, res in out.items():
        s = res["summary"]
        console.print(Text.assemble((method, "bold"), f": {res['n_clusters']} clusters"))
        for key in sorted(
            k for k, v in s.items() if isinstance(v, int | float) and not k.endswith(("_lo", "_hi"))
        ):
            interval = format_interval(s[key], s.get(f"{key}_lo"), s.get(f"{key}_hi"))
            console.print(plain(f"  {key}: {interval}"))
        for name, path in res["figures"].items():
            console.print(plain(f"  figure {name}: {path}"))


@cli_errors
def report(
    catalogue: Annotated[str, typer.Option(help="Catalogue name or id")],
    runs: Annotated[
        str | None, typer.Option(help="Comma-separated run ids (default newest per kind)")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples")] = 1000,
    results_csv: Annotated[
        Path | None,
        typer.Option(
            help="Merge the table's rows into this results CSV (docs/benchmark_results.csv): "
            "rows of the same preset and estimator are replaced, the others kept"
        ),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Mock preset the rows belong to (with --results-csv)")
    ] = None,
    predicted_only: Annotated[
        bool,
        typer.Option(
            help="Compute the table on the clusters every run predicted (runs of some folds)"
        ),
    ] = False,
) -> None:
    """Benchmark table and scatter by mass and redshift bin (flow report)."""
    if results_csv is not None and not preset:
        raise typer.BadParameter("--results-csv needs --preset", param_hint="--preset")
    prefect_runs.prepare()
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from flows.report import report as flow

    run_ids = [int(r) for r in _split(runs) or []] or None
    out = prefect_runs.announced(flow)(catalogue, run_ids, n_boot, predicted_only)
    _print_report(out)
    if results_csv is not None:
        # lazy: start-up (models.comparison loads matplotlib; only this option needs it)
        from models.results_table import merge_results_csv, results_rows

        path = merge_results_csv(results_csv, preset, results_rows(preset, out["benchmark"]))
        console.print(plain(f"rows of preset {preset!r} merged into {path}"))


def _print_report(out: dict[str, Any]) -> None:
    print_benchmark(out["benchmark"], f"benchmark on {out['catalogue']}")
    labels = {str(r["run_id"]): r["label"] for r in out["runs"]}
    for run_id, axes in out["scatter_by_bin"].items():
        for axis, bins in axes.items():
            print_bins(
                bins,
                f"{labels.get(run_id, run_id)} (run {run_id}): scatter by {'mass' if axis == 'mass' else 'redshift'}",
            )
    console.print(plain(f"files: {', '.join(out['files'].values())}"))


@cli_errors
def serve(
    inbox: Annotated[
        Path | None, typer.Option(help="Inbox directory (default CLUSTERMASS_INBOX_DIR)")
    ] = None,
    interval: Annotated[
        int, typer.Option(help="Interval of the fallback scan of the whole inbox, in seconds")
    ] = 600,
    watch: Annotated[
        bool,
        typer.Option(
            help="Watch the inbox: ingest new files within seconds (and scan it at start-up)"
        ),
    ] = True,
) -> None:
    """Serve the flows as Prefect deployments (inbox watched and scanned; the rest on demand)."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from flows.serve import serve_all
    from services.settings import get_settings

    serve_all(inbox or get_settings().inbox_dir, watch=watch, inbox_interval_s=interval)


@cli_errors
def demo(
    n: Annotated[int, typer.Option("--n", help="Clusters in the training mock")] = 3300,
    seed: Annotated[int, typer.Option(help="Random seed of the mock")] = 7,
    models: Annotated[str, typer.Option(help="Networks to train")] = "single",
    epochs: Annotated[int, typer.Option(help="Max epochs per fold")] = 8,
    attribute_clusters: Annotated[int, typer.Option(help="Clusters to attribute")] = 48,
    preset: Annotated[
        str, typer.Option(help="Mock preset: 'paper' (the regime of Ho+23) or 'erass'")
    ] = "paper",
) -> None:
    """Run the whole chain on a paper-size mock: mock, ingest, train, predict, attribute, report.

    With no server configured it uses the embedded PostgreSQL, runs Celery tasks in-process
    and Prefect in ephemeral mode, so it needs nothing but this package. The networks train on
    the folds of ``configs/demo.yaml`` (4 of the 8 octants, <= 8 epochs: ~2.5 min of training
    on 2 cores with bf16), and the benchmark table compares them with the proxies on the
    clusters they predicted.
    """
    prefect_runs.prepare()
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from db import migrate
    from flows.estimate import attribute as attribute_flow
    from flows.estimate import predict as predict_flow
    from flows.report import report as report_flow
    from flows.simulate import ingest_simulation
    from flows.train import train_models
    from services.database import database_url
    from services.settings import get_settings

    ingest_simulation, train_models, predict_flow, attribute_flow, report_flow = map(
        prefect_runs.announced,
        (ingest_simulation, train_models, predict_flow, attribute_flow, report_flow),
    )
    settings = get_settings()
    config = settings.configs_dir / "demo.yaml"
    if not config.is_file():
        raise FileNotFoundError(
            f"{config}: the demo's run configuration is missing; set CLUSTERMASS_CONFIGS_DIR to "
            "the folder holding the shipped configs/ (demo.yaml)"
        )
    t0 = time.perf_counter()

    def step(text: str) -> None:
        stamp = f"[{time.perf_counter() - t0:6.1f} s]"
        console.print(Text.assemble((stamp, "bold cyan"), " ", plain(text)))

    where = "embedded PostgreSQL" if not settings.database_url else "the configured server"
    mode = "in-process (eager)" if settings.celery_eager else f"workers via {settings.broker_url}"
    step(f"database: {where}; Celery tasks: {mode}; data: {settings.data_dir}")
    migrate.upgrade(database_url(), "head")
    step(f"mock of {n} clusters (preset {preset}, seed {seed}) -> ingest")
    train_cat = ingest_simulation(n_clusters=n, seed=seed, preset=preset)
    step(f"catalogue {train_cat['catalogue_name']}: {train_cat['n_clusters']} clusters")
    other = ingest_simulation(n_clusters=max(40, n // 8), seed=seed + 1000, preset=preset)
    kinds = _split(models) or ["single"]
    folds = (yaml.safe_load(config.read_text()) or {}).get("cv", {}).get("folds")
    which = "all 8 spatial folds" if folds is None else f"{len(folds)} of the 8 spatial folds"
    step(f"train {', '.join(kinds)} on {which} (<= {epochs} epochs each)")
    t_train = time.perf_counter()
    runs = train_models(
        train_cat["catalogue_name"],
        kinds,
        str(config),
        {"training": {"max_epochs": epochs}},
    )
    train_s = time.perf_counter() - t_train
    for r in runs:
        step(
            f"run {r['run_id']} ({r['kind']}): sigma_lnM {_fmt(r.get('sigma_lnM'))}, bias {_fmt(r.get('bias_dex'))} dex"
        )
    first = runs[0]["run_id"]
    step(f"predict an independent mock ({other['n_clusters']} clusters) with run {first}")
    pred = predict_flow(first, other["catalogue_name"])
    step(f"{pred['n_predicted']} clusters predicted")
    step(f"saliency of {attribute_clusters} clusters (run {first})")
    attr = attribute_flow(
        AttributeParams(run_id=first, max_clusters=attribute_clusters, n_boot=200)
    )
    sal = attr["saliency"]["summary"]
    step(
        "saliency summary: "
        + ", ".join(
            f"{k}={_fmt(v)}"
            for k, v in sal.items()
            if isinstance(v, float) and not k.endswith(("_lo", "_hi"))
        )[:400]
    )
    step("report")
    out = report_flow(train_cat["catalogue_name"], [r["run_id"] for r in runs], 200, True)
    _print_report(out)
    console.print(
        f"[dim]demo settings: {n} clusters ({preset} preset), {which}, <= {epochs} epochs per "
        f"fold ({train_s:.0f} s of training); the table covers the {out.get('n_benchmark')} "
        "clusters the networks predicted out-of-fold. The paper's settings (8 folds, <= 200 "
        "epochs, patience 20): docs/benchmark.md.[/]"
    )
    step("done")
    console.print(Text(_headline(out), style="bold"))
    console.print(f"wall time {time.perf_counter() - t0:.0f} s")


def _headline(out: dict[str, Any]) -> str:
    """One sentence for a newcomer: the best CNN's scatter against the best observed proxy's."""
    # lazy: models.comparison loads matplotlib; only the end of the demo needs it
    from models.comparison import cnn_vs_observed

    duel = cnn_vs_observed(out["benchmark"])
    if duel is None:
        return "No CNN or observed proxy row in the table to compare."
    cnn, proxy = duel["cnn"], duel["proxy"]

    def pct(r: dict[str, Any]) -> str:
        lo, hi = r.get("sigma_lnM_lo"), r.get("sigma_lnM_hi")
        band = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
        return f"{100 * r['sigma_lnM']:.1f}%{band}"

    verdict = "better" if duel["difference"] < 0 else "not better"
    return (
        f"Result: the {cnn['observable']} weighs these clusters with {pct(cnn)} scatter in ln M; "
        f"the best observed proxy ({proxy['observable']}) has {pct(proxy)}, on the same "
        f"{out.get('n_benchmark', cnn.get('n'))} clusters: the CNN is {verdict} by "
        f"{abs(100 * duel['difference']):.1f} points (68% intervals in brackets)."
    )
