"""``clustermass runs``: operate training runs (find runs left by a dead process, resume them)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli import prefect_runs
from cli.commands._common import cli_errors, console, plain
from cli.commands._progress import show_progress

__all__ = ["app", "recover"]

app = typer.Typer(help="Operate training runs: recover runs left running by a dead process.")


@app.command("recover")
@cli_errors
def recover(
    resume: Annotated[
        bool, typer.Option("--resume", help="Resume every run found (fold by fold)")
    ] = False,
) -> None:
    """List runs left pending/running by a dead process (no flow heartbeat for RUN_STALE_S).

    Their finished folds are kept: `clustermass fit --resume RUN` (or `--resume` here) trains
    the others.
    """
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from services.jobs.training import stale_runs
    from services.settings import get_settings

    stale = stale_runs()
    if not stale:
        age = get_settings().run_stale_s
        console.print(plain(f"no run left running by a dead process (stale after {age:g} s)"))
        return
    table = Table(title=plain("runs left running by a dead process"))
    for col in ("run", "name", "kind", "status", "last heartbeat (UTC)", "folds done"):
        table.add_column(plain(col))
    for r in stale:
        beat = r["heartbeat_at"].strftime("%Y-%m-%d %H:%M:%S") if r["heartbeat_at"] else "never"
        cells = (
            str(r["run_id"]), r["name"], r["kind"], r["status"], beat,
            f"{r['folds_done']}/{r['folds_total']}",
        )  # fmt: skip
        table.add_row(*map(plain, cells))
    console.print(table)
    if not resume:
        console.print(plain("resume one with `clustermass fit --resume RUN`, all with --resume"))
        return
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from flows.train import resume_training

    prefect_runs.prepare()
    for r in stale:
        with show_progress():
            out = prefect_runs.announced(resume_training)(r["run_id"])
        console.print(plain(f"run {out['run_id']} ({out['kind']}): {out['status']}"))
