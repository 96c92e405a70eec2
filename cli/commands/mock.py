"""``clustermass mock``: generate an eROSITA-like mock cluster catalogue and write it to a folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.commands._common import cli_errors, console, plain
from mocks import MockConfig, generate
from mocks.errors import MockParameterError

__all__ = ["mock"]


@cli_errors
def mock(
    out: Annotated[Path, typer.Option("--out", help="Output folder (manifest, truth, maps/)")],
    n: Annotated[int | None, typer.Option("--n", help="Number of clusters [default: 3300]")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed [default: 1]")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config, e.g. configs/mock_paper.yaml")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="erass (eROSITA depth with backgrounds, the default) or paper (Ho+23: ICM + "
            "AGN photons only, their 11 snapshot redshifts)",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Allow writing into a non-empty folder")
    ] = False,
) -> None:
    """Generate a mock catalogue (truth table, TOTAL/AGN/ICM count maps, galaxies) into OUT."""
    overrides = {k: v for k, v in {"n_clusters": n, "seed": seed}.items() if v is not None}
    if config and preset:
        raise MockParameterError("--preset", "give either --config or --preset, not both")
    if config:
        cfg = MockConfig.from_yaml(config, **overrides)
    else:
        cfg = MockConfig.from_preset(preset or "erass", **overrides)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise MockParameterError("--out", f"{out} exists and is not empty; pass --overwrite")
    t0 = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        gen = bar.add_task("generating", total=cfg.n_clusters)
        cat = generate(cfg, progress=lambda done: bar.update(gen, completed=done))
        t_gen = time.perf_counter() - t0
        wri = bar.add_task("writing", total=cfg.n_clusters)
        manifest = cat.write(out, progress=lambda done: bar.update(wri, completed=done))
    t_all = time.perf_counter() - t0
    truth = cat.truth
    table = Table(title=plain(f"mock catalogue in {out}"), show_header=False)
    table.add_row("clusters", str(len(cat)))
    table.add_row("seed", str(cfg.seed))
    table.add_row("preset", cfg.preset)
    table.add_row("halos", str(len(set(np.asarray(truth["halo_id"]).tolist()))))
    table.add_row("snapshots (z)", ", ".join(f"{z:g}" for z in cfg.snapshot_redshifts))
    lg = truth["log10_m500c"]
    table.add_row(
        plain("log10 M500c [h^-1 Msun]"),
        f"{lg.min():.2f} - {lg.max():.2f} (median {float(_median(lg)):.2f})",
    )
    table.add_row(
        "median counts (total / ICM)",
        f"{_median(truth['N_phot']):.0f} / {_median(truth['N_phot_icm']):.0f}",
    )
    table.add_row("galaxies", str(len(cat.galaxies)))
    table.add_row(
        "time", f"{t_gen:.1f} s generating ({len(cat) / t_gen:.0f} clusters/s), {t_all:.1f} s total"
    )
    table.add_row("manifest", plain(manifest))
    console.print(table)


def _median(col: object) -> float:
    return float(np.median(np.asarray(getattr(col, "value", col), dtype=float)))
