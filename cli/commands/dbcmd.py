"""``clustermass db``: create, migrate and inspect the database; stop the embedded server."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.commands._common import cli_errors, console, plain
from db import embedded, migrate, tables
from db.session import check_connection, make_engine, redact, row_counts
from services.database import database_url
from services.jobs.verify import verify_database
from services.settings import get_settings

app = typer.Typer(help="Database: migrations, status, embedded server.", no_args_is_help=True)


def _url_checked() -> str:
    url = database_url()
    engine = make_engine(url)
    try:
        check_connection(engine)
    finally:
        engine.dispose()
    return url


def _print_revision(url: str) -> None:
    engine = make_engine(url)
    console.print(
        plain(f"database {redact(url)} is at revision {migrate.current_revision(engine)}")
    )
    engine.dispose()


@app.command()
@cli_errors
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    url = _url_checked()
    migrate.upgrade(url, revision)
    _print_revision(url)


@app.command()
@cli_errors
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. 'base' or '-1'"),
) -> None:
    """Revert migrations down to REVISION."""
    url = _url_checked()
    migrate.downgrade(url, revision)
    _print_revision(url)


@app.command()
@cli_errors
def status() -> None:
    """Show the server, the schema revision and row counts of the main tables."""
    settings = get_settings()
    url = _url_checked()
    engine = make_engine(url)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    where = "embedded" if not settings.database_url else "configured"
    console.print(plain(f"server   : {redact(url)} ({where})"))
    upgrade_hint = "" if current == head else "  <- run `clustermass db upgrade`"
    console.print(plain(f"revision : {current} (head {head}){upgrade_hint}"))
    console.print(plain(f"data dir : {settings.data_dir}"))
    if current == head:
        table = Table(title="rows")
        table.add_column("table")
        table.add_column("rows", justify="right")
        names = [
            t.__tablename__
            for t in (
                tables.Catalogue,
                tables.Cluster,
                tables.Observable,
                tables.Product,
                tables.ModelRun,
                tables.Prediction,
                tables.Attribution,
            )
        ]
        for name, n in row_counts(engine, names).items():
            table.add_row(name, str(n))
        console.print(table)
    engine.dispose()


@app.command()
@cli_errors
def stop() -> None:
    """Stop the embedded PostgreSQL server (no-op when a server URL is configured)."""
    settings = get_settings()
    if settings.database_url:
        console.print("CLUSTERMASS_DATABASE_URL is set: no embedded server to stop")
        return
    stopped = embedded.stop(settings.embedded_pg_dir)
    state = "stopped" if stopped else "was not running"
    console.print(plain(f"embedded server in {settings.embedded_pg_dir} {state}"))


@app.command()
@cli_errors
def verify(
    repair: bool = typer.Option(
        False, "--repair", help="Restore stored files that can be re-derived; say what cannot."
    ),
) -> None:
    """Check every product file (exists, sha256, owned by the store) and run/catalogue rows.

    Prints one line per problem and the counts; exits 1 when a problem remains, 0 when clean.
    """
    report = verify_database(repair=repair)

    def say(line: str) -> None:
        console.print(plain(line))  # paths may hold [brackets]

    say(
        f"checked {report.n_products} products ({report.n_files} files) in the store "
        f"{report.data_dir}"
    )
    for line in report.repaired:
        say(f"repaired: {line}")
    for line in report.unrepaired:
        say(line)
    for problem in report.problems:
        say(f"problem: {problem.message}")
    for note in report.notes:
        say(f"note: {note}")
    if report.ok:
        say(f"ok: no problems{f' ({len(report.repaired)} repaired)' if report.repaired else ''}")
        return
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.counts().items()))
    say(f"{len(report.problems)} problems ({counts})" + ("" if repair else "; try `--repair`"))
    raise typer.Exit(1)
