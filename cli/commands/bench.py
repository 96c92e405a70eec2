"""``clustermass bench``: run every performance benchmark and write ``docs/benchmarks.md``.

Thin: the options of ``python -m benchmarks`` (:mod:`benchmarks.runner`), a progress bar over
the benchmarks, and a table of the headline numbers at the end. The ``benchmarks`` package lives
next to the service packages in a checkout; it is imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cli.commands._common import cli_errors, console, err_console, plain

__all__ = ["bench"]


@cli_errors
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes (~2 min): tests the runner, not the code")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option("--only", help="Comma-separated subset of mocks,ingest,train,inference,sql"),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="Torch device of the train and inference benchmarks")
    ] = "cpu",
    out: Annotated[Path, typer.Option("--out", help="Markdown report")] = Path(
        "docs/benchmarks.md"
    ),
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Results JSON (default: OUT with the suffix .json)"),
    ] = None,
    admin_url: Annotated[
        str | None,
        typer.Option("--admin-url", help="PostgreSQL URL where databases may be created"),
    ] = None,
    keras_python: Annotated[
        str | None, typer.Option("--keras-python", help="Interpreter with tensorflow (Keras row)")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Torch threads (default: all cores)")
    ] = None,
    merge: Annotated[
        list[Path] | None,
        typer.Option("--merge", help="Earlier results JSON to report alongside (repeatable)"),
    ] = None,
    render_only: Annotated[
        bool, typer.Option("--render-only", help="Re-render the --merge results; measure nothing")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a full report with a quick or partial one")
    ] = False,
) -> None:
    """Run every benchmark (mocks, ingest, train, inference, sql) and write the report."""
    try:
        # lazy: start-up (torch/Prefect load only for the command that runs)
        from benchmarks import runner
        from benchmarks.errors import BenchmarkError
    except ModuleNotFoundError as exc:
        err_console.print(
            Text.assemble(
                ("error:", "bold red"),
                " ",
                plain(
                    f"the benchmarks package is not importable ({exc}); run "
                    "`python -m benchmarks` from the repository root, or reinstall the project"
                ),
            )
        )
        raise typer.Exit(2) from exc

    if device not in ("cpu", "cuda"):
        raise BenchmarkError(f"--device {device!r}: choose 'cpu' or 'cuda'")
    options = runner.RunOptions(
        quick=quick,
        only=runner.parse_only(only),
        device=device,  # type: ignore[arg-type]
        out=out,
        json=json_path,
        keras_python=keras_python or runner.DEFAULT_KERAS_PYTHON,
        threads=threads,
        merge=list(merge or []),
        render_only=render_only,
        force=force,
    )
    if admin_url:
        options.admin_url = admin_url
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("benchmarks", total=len(options.only))

        def progress(key: str, done: int, total: int) -> None:
            label = "done" if key == "done" else f"{key}: {runner.BENCHMARKS[key].title}"
            bar.update(task, completed=done, total=total, description=label)

        runs = runner.execute(options, progress)
    _print_summary(runs[-1])
    console.print(plain(f"wrote {options.out} and {options.json_path}"))
    failed = [k for k, v in runs[-1]["results"].items() if v.get("status") != "ok"]
    if failed:
        console.print(
            Text.assemble(
                ("failed:", "red"), " ", plain(f"{', '.join(failed)} (the report shows why)")
            )
        )
        raise typer.Exit(1)


def _print_summary(run: dict[str, Any]) -> None:
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from benchmarks.report import SECTIONS

    title = "benchmarks" + (" (--quick: not representative)" if run["options"]["quick"] else "")
    table = Table(title=title)
    for col in ("benchmark", "this project", "baseline (same run)", "speed-up"):
        table.add_column(col)
    for key, entry in run["results"].items():
        heading, _, _, row = SECTIONS[key]
        if entry.get("status") == "ok":
            table.add_row(plain(heading), *(plain(c) for c in row(entry["data"])))
        else:
            table.add_row(plain(heading), plain("failed", style="red"), "", "")
    console.print(table)
