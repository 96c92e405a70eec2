"""``clustermass status``: catalogues, runs, queue depths, live workers, the Prefect API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cli.commands._common import cli_errors, console, plain

__all__ = ["status"]


def _field(label: str, value: str) -> None:
    console.print(Text.assemble((f"{label:<11}", "bold"), " : ", plain(value)))


def _problem(what: str, text: str) -> None:
    console.print(Text.assemble((f"{what}:", "bold red"), " ", plain(text)))


@cli_errors
def status(
    runs: Annotated[int, typer.Option(help="How many of the newest runs to list")] = 20,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the workers' answers [s]")
    ] = 1.5,
) -> None:
    """Show what the system is doing: data, runs, queues, workers and the Prefect API."""
    # lazy: start-up (Celery and the database load only for the command that runs)
    from services.ops_status import system_status

    st = system_status(run_limit=runs, worker_timeout_s=timeout)
    api = st.prefect_api or "none (each command runs Prefect's temporary server; no UI to open)"
    _field("Prefect API", api)
    _field("database", st.database)
    if st.database_error:
        _problem("database unavailable", st.database_error)
    else:
        cats = Table(title="catalogues")
        for col in ("id", "name", "kind", "clusters"):
            cats.add_column(col, justify="right" if col in ("id", "clusters") else "left")
        for c in st.catalogues:
            cats.add_row(str(c.id), plain(c.name), plain(c.kind), str(c.n_clusters))
        if st.catalogues:
            console.print(cats)
        else:
            _field("catalogues", "none ingested yet")
        table = Table(title=f"runs (newest {runs})")
        for col in ("run", "kind", "catalogue", "status", "folds done", "created", "finished"):
            table.add_column(col, no_wrap=col in ("created", "finished"))
        for r in st.runs:
            table.add_row(
                str(r.id), plain(r.kind), plain(r.catalogue or "-"), plain(r.status),
                f"{r.folds_done}/{r.folds_total}",
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.finished_at.strftime("%Y-%m-%d %H:%M") if r.finished_at else "-",
            )  # fmt: skip
        if st.runs:
            console.print(table)
        else:
            _field("runs", "none yet")
    if st.broker is None:
        _field(
            "broker",
            "none (CLUSTERMASS_BROKER_URL unset): Celery tasks run in-process, "
            "no queue and no worker to show",
        )
        return
    _field("broker", st.broker)
    if st.broker_error:
        _problem("broker unavailable", st.broker_error)
        return
    queues = Table(title="queues")
    queues.add_column("queue")
    queues.add_column("waiting", justify="right")
    queues.add_column("workers", justify="right")
    for name, depth in st.queues.items():
        consumers = sum(name in w.queues for w in st.workers)
        queues.add_row(plain(name), str(depth), str(consumers))
    console.print(queues)
    if not st.workers:
        _problem(
            "no live worker",
            "start one per queue: `clustermass worker --queue cpu`, `clustermass worker --queue gpu`",
        )
        return
    workers = Table(title="workers")
    for col in ("worker", "queues", "devices", "busy"):
        workers.add_column(col)
    for w in st.workers:
        slots = f"{w.active}/{w.concurrency}" if w.concurrency else str(w.active)
        workers.add_row(plain(w.name), plain(",".join(w.queues)), plain(",".join(w.devices)), slots)
    console.print(workers)
    idle = [q for q in st.queues if not any(q in w.queues for w in st.workers)]
    for q in idle:
        _problem(f"no worker on queue {q}", f"its tasks wait: `clustermass worker --queue {q}`")
