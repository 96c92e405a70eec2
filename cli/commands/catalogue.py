"""``clustermass catalogue list | show NAME | delete NAME``: the catalogues in the database."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from cli.commands._common import cli_errors, console, plain
from db import mass_catalogue
from db.session import session_scope
from services.database import ready_engine

app = typer.Typer(
    help="List, show and delete catalogues (surveys and simulations).", no_args_is_help=True
)

_LIST_COLUMNS = (
    "id",
    "name",
    "kind",
    "n_clusters",
    "n_with_mass",
    "n_estimates",
    "n_match_sets",
    "n_runs",
    "created_at",
)


_HEADERS = {
    "n_clusters": "clusters",
    "n_with_mass": "with mass",
    "n_estimates": "estimates",
    "n_match_sets": "match sets",
    "n_runs": "runs",
    "created_at": "created",
}


def _cell(v: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if v is None:
        return "-"
    if hasattr(v, "strftime"):
        return v.strftime(fmt)  # type: ignore[union-attr]
    return str(v)


@app.command("list")
@cli_errors
def list_cmd() -> None:
    """Every catalogue: clusters, catalogue masses, other estimates, match sets, runs."""
    with session_scope(ready_engine()) as s:
        rows = mass_catalogue.catalogue_summaries(s)
    table = Table(title=plain(f"{len(rows)} catalogues"))
    for c in _LIST_COLUMNS:
        left = c in ("name", "kind")
        table.add_column(plain(_HEADERS.get(c, c)), justify="left" if left else "right")
    for r in rows:
        table.add_row(*(plain(_cell(r[c], "%Y-%m-%d")) for c in _LIST_COLUMNS))
    console.print(table)


@app.command("show")
@cli_errors
def show_cmd(
    name: str = typer.Argument(..., help="Catalogue name or id"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """One catalogue: description, counts, match sets (latest marked), runs, ingestions."""
    with session_scope(ready_engine()) as s:
        d = mass_catalogue.catalogue_detail(s, name)
    if fmt == "json":
        console.print_json(json.dumps(d, default=str))
        return
    head = Table(title=plain(f"catalogue {d['name']} (id {d['id']})"))
    head.add_column("field")
    head.add_column("value")
    for k in (*_LIST_COLUMNS[2:], "source_path", "citation", "description"):
        head.add_row(plain(k), plain(_cell(d[k])))
    console.print(head)
    sets = Table(title=plain("match sets (* = in use by the views)"))
    for c in ("id", "catalogue_a", "catalogue_b", "method", "n_matches", "computed_at"):
        sets.add_column(plain(c))
    for m in d["match_sets"]:
        mark = "*" if m["is_latest"] else ""
        sets.add_row(
            plain(f"{m['match_set_id']}{mark}"),
            *(plain(_cell(m[c])) for c in ("catalogue_a", "catalogue_b", "method", "n_matches")),
            plain(_cell(m["computed_at"])),
        )
    console.print(sets if d["match_sets"] else plain("match sets: none", style="dim"))
    runs = ", ".join(f"{r['run_id']} ({r['name']})" for r in d["runs"]) or "none"
    console.print(plain(f"model runs using it: {runs}"))
    for f in d["ingestions"]:
        console.print(
            plain(
                f"ingestion {f['id']}: {f['path']} [{f['status']}] {f['n_rows']} rows, "
                f"{f['n_rejected']} rejected ({_cell(f['created_at'])})"
            )
        )


@app.command("delete")
@cli_errors
def delete_cmd(
    name: str = typer.Argument(..., help="Catalogue name or id"),
    force: bool = typer.Option(
        False, "--force", help="Delete even if model runs use it (their predictions of it go)"
    ),
) -> None:
    """Delete a catalogue: its clusters, names, matches, match sets and mass estimates.

    Refused while model runs use it, unless --force. Product files stay in the file store:
    `clustermass db verify` lists them as unreferenced and keeps them.
    """
    with session_scope(ready_engine()) as s:
        n = mass_catalogue.delete_catalogue(s, name, force=force)
    console.print(
        plain(
            f"deleted catalogue {n['catalogue']!r}: {n['clusters']} clusters, "
            f"{n['match_sets']} match sets ({n['matches']} matches), {n['mass_estimates']} mass "
            f"estimates, {n['predictions']} predictions, {n['products']} product rows. Their "
            "files stay in the file store: `clustermass db verify` lists them as unreferenced "
            "(and keeps them)."
        )
    )
