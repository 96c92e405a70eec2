"""``clustermass train`` and ``clustermass benchmark``: mass networks on a mock catalogue directory.

Thin: parse options, read the catalogue with ``mocks.read_catalogue``, call
:func:`models.pipeline.run_training` / :func:`models.pipeline.run_benchmark`, render progress
and results with rich.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from astro.numbers import format_number
from cli.commands._common import cli_errors, console, plain
from services.jobs.data import mock_directory_arrays

__all__ = ["train", "benchmark"]

_MODELS = ("single", "multi", "multimodal")


class _Bars:
    """One rich progress bar per (model, fold, member), showing the loss."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple, Any] = {}

    def __call__(self, kind: str, p: Any) -> None:
        key = (kind, p.fold, p.member)
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                f"{kind} fold {p.fold} m{p.member}",
                total=p.max_epochs * p.steps_per_epoch,
                loss="",
            )
        task = self.tasks[key]
        done = p.epoch * p.steps_per_epoch + p.step
        text = f"loss {p.loss:.4g}"
        if p.val_loss is not None:
            text += f"  val {p.val_loss:.4g} (best {p.best_val_loss:.4g} @ {p.best_epoch})"
        self.progress.update(task, completed=done, loss=text)

    def finish(self) -> None:
        for task in self.tasks.values():
            t = self.progress.tasks[task]
            self.progress.update(task, total=t.completed)  # early stopping ends a bar early


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _pct(fraction: float | None) -> str:
    """Format a fraction in percent, 2 decimals (small values keep 3 significant digits)."""
    return format_number(fraction, decimals=2, scale=100, missing="")


def _overrides(device: str | None, epochs: int | None, folds: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if device is not None:
        out.setdefault("training", {})["device"] = device
    if epochs is not None:
        out.setdefault("training", {})["max_epochs"] = epochs
    if folds:
        out["cv"] = {"folds": [int(f) for f in folds.split(",")]}
    return out


@cli_errors
def train(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Network: single, multi or multimodal")
    ],
    data: Annotated[Path, typer.Option(help="Mock catalogue directory (mocks layout)")],
    out: Annotated[Path, typer.Option(help="Output directory (a run folder is made inside)")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML run config")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override training.max_epochs")] = None,
    folds: Annotated[str | None, typer.Option(help="Comma-separated folds (default all)")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the metrics")] = 1000,
) -> None:
    """Cross-validate one mass network on a catalogue and write weights, predictions, metrics."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from models.config import RunConfig, deep_update
    from models.errors import ModelConfigError
    from models.pipeline import run_training

    if model not in _MODELS:
        raise ModelConfigError(f"--model {model!r}: choose one of {list(_MODELS)}")
    if config is not None and config.is_file():
        file_kind = ((yaml.safe_load(config.read_text()) or {}).get("model") or {}).get("kind")
        if file_kind not in (None, model):
            raise ModelConfigError(f"--model {model!r} but {config} configures {file_kind!r}")
    overrides = deep_update({"model": {"kind": model}}, _overrides(device, epochs, folds))
    cfg = RunConfig.from_config(config, **overrides)
    arrays = mock_directory_arrays(data)
    console.print(plain(f"{len(arrays)} clusters from {data}; run key {cfg.key()[:12]}"))
    with _progress() as prog:
        bars = _Bars(prog)
        run_dir, _, metrics = run_training(
            arrays, cfg, out, progress=lambda p: bars(model, p), n_boot=n_boot
        )
        bars.finish()
    console.print(
        plain(
            f"sigma_lnM = {_pct(metrics['sigma_lnM'])}% "
            f"[{_pct(metrics['sigma_lnM_lo'])}, {_pct(metrics['sigma_lnM_hi'])}], "
            f"bias = {format_number(metrics['bias_dex'], signed=True)} dex over "
            f"{metrics['n_clusters']} clusters"
        )
    )
    if "calibration" in metrics:
        console.print(plain(f"calibration: {json.dumps(metrics['calibration'])}"))
    console.print(plain(f"run written to {run_dir}"))


@cli_errors
def benchmark(
    data: Annotated[Path, typer.Option(help="Mock catalogue directory (mocks layout)")],
    out: Annotated[Path, typer.Option(help="Output directory")],
    config: Annotated[
        list[Path] | None,
        typer.Option("--config", "-c", help="YAML run config (repeatable; model.kind picks)"),
    ] = None,
    models: Annotated[str, typer.Option(help="Comma-separated networks")] = ",".join(_MODELS),
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override training.max_epochs")] = None,
    folds: Annotated[str | None, typer.Option(help="Comma-separated folds (default all)")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples per table entry")] = 1000,
) -> None:
    """Train the CNNs, fit the scalar-proxy baselines and the oracle; print and write the table."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from models.config import RunConfig
    from models.errors import ModelConfigError
    from models.pipeline import run_benchmark

    kinds = [m.strip() for m in models.split(",") if m.strip()]
    bad = [k for k in kinds if k not in _MODELS]
    if bad:
        raise ModelConfigError(f"--models {bad}: choose from {list(_MODELS)}")
    over = _overrides(device, epochs, folds)
    configs: dict[str, RunConfig] = {}
    for path in config or []:
        cfg = RunConfig.from_config(path, **over)
        configs[cfg.model.kind] = cfg
    for k in kinds:
        configs.setdefault(k, RunConfig.from_config(model={"kind": k}, **over))
    arrays = mock_directory_arrays(data)
    console.print(plain(f"{len(arrays)} clusters from {data}"))
    with _progress() as prog:
        bars = _Bars(prog)
        res = run_benchmark(
            arrays, out, configs=configs, models=kinds, n_boot=n_boot, progress=bars
        )
        bars.finish()
    table = Table(title="sigma_lnM (68% bootstrap interval) and bias")
    for col in ("observable", "sigma_lnM [%]", "bias [dex]", "N", "paper [%]"):
        table.add_column(plain(col), justify="left" if col == "observable" else "right")
    for r in res.rows:
        sig = f"{_pct(r['sigma_lnM'])} [{_pct(r['sigma_lnM_lo'])}, {_pct(r['sigma_lnM_hi'])}]"
        bias = format_number(r["bias_dex"], signed=True, missing="")
        paper = _pct(r["paper_sigma_lnM"])
        table.add_row(*map(plain, (r["observable"], sig, bias, str(r["n"]), paper)))
    console.print(table)
    console.print(plain(f"wrote {res.table_csv}, {res.table_md}, {res.figure}"))
