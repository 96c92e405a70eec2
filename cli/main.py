"""The ``clustermass`` command line (typer). Commands parse input and call library functions."""

from __future__ import annotations

import os

import typer

from cli.commands import (
    bench,
    catalogue,
    dbcmd,
    ingest,
    mock,
    pipeline,
    query,
    runs,
    status,
    train,
    worker,
)
from cli.commands._common import terminal_logging

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect's ephemeral API server (no PREFECT_API_URL) starts in a subprocess; on a loaded
# 2-core machine it can take longer than Prefect's default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# OpenMP threads that sleep instead of spinning at barriers: on shared CPUs a spinning torch
# thread competes with other processes (2-core machine under load: 2 threads with the default
# policy trained 1.5-4x slower than with PASSIVE; benchmarks/bench_train_step.py). Must be set
# before torch is imported; an explicit environment value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(
    name="clustermass",
    help="Galaxy-cluster masses from X-ray maps with deep learning (Ho et al. 2023).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
#: The help's command groups, in the order ``clustermass --help`` shows them.
PANELS = ("Set-up", "Data", "Models", "Results", "Operations")
SETUP, DATA, MODELS, RESULTS, OPERATIONS = PANELS

app.add_typer(dbcmd.app, name="db", rich_help_panel=SETUP)
app.command("demo", rich_help_panel=SETUP)(pipeline.demo)
app.command("mock", rich_help_panel=DATA)(mock.mock)
app.command("simulate", rich_help_panel=DATA)(pipeline.simulate)
app.add_typer(ingest.app, name="ingest", rich_help_panel=DATA)
app.command("crossmatch", rich_help_panel=DATA)(ingest.crossmatch)
app.command("fit", rich_help_panel=MODELS)(pipeline.fit)
app.command("train", rich_help_panel=MODELS)(train.train)
app.command("benchmark", rich_help_panel=MODELS)(train.benchmark)
app.command("predict", rich_help_panel=MODELS)(pipeline.predict)
app.command("attribute", rich_help_panel=MODELS)(pipeline.attribute)
app.command("report", rich_help_panel=RESULTS)(pipeline.report)
app.add_typer(query.app, name="query", rich_help_panel=RESULTS)
app.add_typer(catalogue.app, name="catalogue", rich_help_panel=DATA)
app.command("status", rich_help_panel=OPERATIONS)(status.status)
app.add_typer(runs.app, name="runs", rich_help_panel=OPERATIONS)
app.command("worker", rich_help_panel=OPERATIONS)(worker.worker)
app.command("serve", rich_help_panel=OPERATIONS)(pipeline.serve)
app.command("bench", rich_help_panel=OPERATIONS)(bench.bench)


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show INFO logs on the terminal (Prefect gets them anyway)"
    ),
) -> None:
    terminal_logging(verbose)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
