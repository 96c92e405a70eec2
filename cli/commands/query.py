"""``clustermass query``: ask the results tables questions (read-only).

Connects with ``CLUSTERMASS_READ_ONLY_DATABASE_URL`` (the ``clustermass_reader`` role) when it
is set, otherwise with the main database URL, and reads only the results views and functions
(docs/sql.md). Every value from the command line is a bound parameter.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from astro.numbers import format_number
from cli.commands._common import cli_errors, console, err_console, plain
from db import cluster_info, mass_catalogue, results
from db.errors import BinEdgesError
from services.database import reader_session

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Query results: scatter per bin, one cluster, runs, the mass catalogue.",
    no_args_is_help=True,
)

Format = Literal["table", "csv", "json"]
_AXIS_ALIASES = {"mass": "mass", "z": "z", "mass-z": "mass_z", "mass_z": "mass_z", "all": "all"}
_STAT_COLUMNS = ("n", "bias_dex", "sigma_lnm", "p16_dex", "p50_dex", "p84_dex")


def _parse_edges(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError as exc:
        raise BinEdgesError(f"{name}: expected comma-separated numbers, got {text!r}") from exc


def _parse_axes(by: str) -> list[str]:
    axes = []
    for part in (p.strip().lower() for p in by.split(",") if p.strip()):
        if part not in _AXIS_ALIASES:
            raise BinEdgesError(f"--by {part!r}: choose from {', '.join(_AXIS_ALIASES)}")
        axes.append(_AXIS_ALIASES[part])
    if not axes:
        raise BinEdgesError("--by needs at least one of mass, z, mass-z, all")
    return axes


def _finite(v: Any) -> Any:
    """JSON has no infinities or NaN: map them to null."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _fmt(v: Any, digits: int = 4) -> str:
    """Format a cell (:func:`astro.numbers.format_number`; small values keep 3 digits)."""
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x, 3) for x in v) + "]" if v else "-"
    return format_number(v, decimals=digits)


# Short headers for the rich tables (csv and json keep the full column names).
_HEADERS = {
    "log10_m500c_pred": "pred",
    "log10_m500c_pred_err": "err",
    "log10_m500c_est": "est",
    "residual_dex": "resid",
    "input_domain": "domain",
    "r_core_over_r500c": "r_core/R500c",
    "median_saliency_agn": "med. sal. AGN",
    "median_saliency_icm": "med. sal. ICM",
    "band_fractions": "band fractions",
    "catalogue_id": "cat",
    "run_id": "run",
    "mass_lo": "logM lo",
    "mass_hi": "logM hi",
    "z_lo": "z lo",
    "z_hi": "z hi",
    "bin_lo": "lo",
    "bin_hi": "hi",
    "bias_dex": "bias",
    "sigma_lnm": "sigma_lnM",
    "p16_dex": "p16",
    "p50_dex": "p50",
    "p84_dex": "p84",
}
_EDGE_COLUMNS = {"mass_lo", "mass_hi", "z_lo", "z_hi", "bin_lo", "bin_hi", "redshift"}


def _emit(rows: list[dict[str, Any]], fmt: Format, title: str, columns: Sequence[str]) -> None:
    if fmt == "json":
        console.print_json(json.dumps([{k: _finite(r[k]) for k in columns} for r in rows]))
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        console.out(buf.getvalue(), end="")
        return
    table = Table(title=plain(title))
    for c in columns:
        left = c in (
            "axis",
            "label",
            "proxy",
            "run_name",
            "name",
            "method",
            "cluster_name",
            "source",
        )
        table.add_column(plain(_HEADERS.get(c, c)), justify="left" if left else "right")
    for r in rows:
        table.add_row(
            *(
                plain(
                    f"{r[c]:g}" if c in _EDGE_COLUMNS and isinstance(r[c], float) else _fmt(r[c], 4)
                )
                for c in columns
            )
        )
    console.print(table)


@app.command()
@cli_errors
def scatter(
    run: int | None = typer.Option(None, "--run", help="Model run id (model_runs.id)"),
    proxy: str | None = typer.Option(None, "--proxy", help="Scalar proxy name instead of a run"),
    catalogue: int | None = typer.Option(
        None,
        "--catalogue",
        help="Catalogue id: with --run, whose predictions to use (default: the run's training "
        "catalogue); with --proxy, the catalogue the proxy was fitted on (required)",
    ),
    by: str = typer.Option("mass", "--by", help="Comma list of mass, z, mass-z, all"),
    fmt: str = typer.Option("table", "--format", help="table, csv or json"),
    mass_edges: str | None = typer.Option(
        None, "--mass-edges", help="log10 M500c edges (h^-1 Msun), e.g. 13.5,14,14.5,15.1"
    ),
    z_edges: str | None = typer.Option(None, "--z-edges", help="Redshift edges, e.g. 0,0.2,0.5"),
    domain: str = typer.Option(
        "mock", "--domain", help="Predictions to use: mock, observed or all (runs only)"
    ),
) -> None:
    """N, bias, sigma_lnM and residual percentiles per bin, for a run or a scalar proxy."""
    if fmt not in ("table", "csv", "json"):
        raise BinEdgesError(f"--format {fmt!r}: choose table, csv or json")
    if domain not in ("mock", "observed", "all"):
        raise BinEdgesError(f"--domain {domain!r}: choose mock, observed or all")
    if (run is None) == (proxy is None):
        raise BinEdgesError("give exactly one of --run ID or --proxy NAME --catalogue ID")
    if proxy is not None and catalogue is None:
        raise BinEdgesError("--proxy needs --catalogue ID (the catalogue the proxy was fitted on)")
    axes = _parse_axes(by)
    mass = _parse_edges(mass_edges, "--mass-edges")
    z = _parse_edges(z_edges, "--z-edges")
    rows: list[dict[str, Any]] = []
    with reader_session() as session:
        for axis in axes:
            if run is not None:
                stats = results.scatter(
                    session,
                    run_id=run,
                    by=axis,  # type: ignore[arg-type]
                    mass_edges=mass,
                    z_edges=z,
                    input_domain=None if domain == "all" else domain,
                    catalogue_id=catalogue,
                )
            else:
                stats = results.proxy_scatter(
                    session,
                    catalogue_id=catalogue,  # type: ignore[arg-type]
                    proxy=proxy,  # type: ignore[arg-type]
                    by=axis,  # type: ignore[arg-type]
                    mass_edges=mass,
                    z_edges=z,
                )
            rows += [s.as_dict() for s in stats]
    if run is not None:
        which = "training catalogue" if catalogue is None else f"catalogue {catalogue}"
        subject = f"run {run} ({domain}, {which})"
    else:
        subject = f"proxy {proxy} (cat. {catalogue})"
    if fmt != "table":
        _emit(rows, fmt, "", ("axis", "mass_lo", "mass_hi", "z_lo", "z_hi", *_STAT_COLUMNS))  # type: ignore[arg-type]
        return
    for axis in axes:
        edges = {"mass": ("mass_lo", "mass_hi"), "z": ("z_lo", "z_hi"), "all": ()}.get(
            axis, ("mass_lo", "mass_hi", "z_lo", "z_hi")
        )
        part = [r for r in rows if r["axis"] == axis]
        _emit(part, "table", f"{subject}: residuals by {axis}", (*edges, *_STAT_COLUMNS))


@app.command("cluster")
@cli_errors
def cluster_cmd(
    name: str = typer.Argument(..., help="Cluster name (case-insensitive), external id or id"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Everything known about one cluster: catalogue values, observables, predictions, ..."""
    if fmt not in ("table", "json"):
        raise BinEdgesError(f"--format {fmt!r}: choose table or json")
    with reader_session() as session:
        reports = cluster_info.cluster_report(session, name)
    if fmt == "json":
        payload = [
            {k: _jsonable(v) for k, v in r.__dict__.items()}
            for r in reports  # dataclass fields: dicts and lists of dicts
        ]
        console.print_json(json.dumps(payload, default=str))
        return
    for rep in reports:
        c = rep.cluster
        head = Table(title=plain(f"cluster {c['name'] or c['external_id']} (id {c['cluster_id']})"))
        head.add_column("field")
        head.add_column("value", justify="right")
        for k, v in c.items():
            head.add_row(plain(k), plain(_fmt(v, 5)))
        console.print(head)
        for title, rows, cols in (
            ("names and aliases", rep.names, ("name", "source")),
            (
                "the same physical cluster in other catalogues (latest match sets)",
                rep.same_physical_cluster,
                ("physical_id", "cluster_id", "catalogue_name", "external_id", "name", "redshift"),
            ),
            (
                "mass estimates (log10 M500c [h^-1 Msun])",
                rep.mass_estimates,
                ("method", "source", "log10_m500c", "log10_m500c_err", "n_members", "flags"),
            ),
            ("observables", rep.observables, ("name", "value", "unit", "error")),
            (
                "predictions (every run)",
                rep.predictions,
                (
                    "run_id",
                    "run_name",
                    "input_domain",
                    "log10_m500c_pred",
                    "log10_m500c_pred_err",
                    "residual_dex",
                    "pull",
                ),
            ),
            (
                "proxy mass estimates",
                rep.proxy_estimates,
                ("proxy", "fit_group", "log10_m500c_est", "residual_dex"),
            ),
            (
                "attribution summaries",
                rep.attributions,
                (
                    "run_id",
                    "method",
                    "r_core_over_r500c",
                    "median_saliency_agn",
                    "median_saliency_icm",
                    "band_fractions",
                ),
            ),
        ):
            if not rows:
                console.print(plain(f"{title}: none", style="dim"))
                continue
            _emit(rows, "table", title, cols)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return _finite(v)


@app.command()
@cli_errors
def runs(
    axis: str = typer.Option("all", "--axis", help="all (one bin), mass or z (default bins)"),
    fmt: str = typer.Option("table", "--format", help="table, csv or json"),
    catalogue: int | None = typer.Option(
        None,
        "--catalogue",
        help="Catalogue id: runs' predictions of it and its proxies (default: each run's "
        "training catalogue, every proxy)",
    ),
) -> None:
    """Compare runs and proxies: the materialised summary (as of the last refresh_results())."""
    if fmt not in ("table", "csv", "json"):
        raise BinEdgesError(f"--format {fmt!r}: choose table, csv or json")
    with reader_session() as session:
        rows = results.summary(session, axis=axis, catalogue_id=catalogue)  # type: ignore[arg-type]
    cols = ["label", "run_id", "catalogue_id", "input_domain"]
    cols += [] if axis == "all" else ["bin_lo", "bin_hi"]
    _emit(rows, fmt, f"summary by {axis} (v_scatter_summary)", [*cols, *_STAT_COLUMNS])  # type: ignore[arg-type]


@app.command()
@cli_errors
def outliers(
    run: int = typer.Option(..., "--run", help="Model run id"),
    sigma: float = typer.Option(3.0, "--sigma", help="Threshold in combined 1-sigma errors"),
    fmt: str = typer.Option("table", "--format", help="table, csv or json"),
) -> None:
    """Clusters whose predicted and catalogue masses differ by more than --sigma errors."""
    if fmt not in ("table", "csv", "json"):
        raise BinEdgesError(f"--format {fmt!r}: choose table, csv or json")
    with reader_session() as session:
        rows = results.outliers(session, run_id=run, n_sigma=sigma, input_domain=None)
    cols = [
        "cluster_id",
        "cluster_name",
        "redshift",
        "log10_m500c",
        "log10_m500c_pred",
        "residual_dex",
        "pull",
    ]
    _emit(rows, fmt, f"run {run}: |pull| > {sigma}", cols)  # type: ignore[arg-type]


CatalogueFormat = Literal["table", "csv", "json", "fits", "votable"]
_CATALOGUE_TABLE_COLUMNS = (
    "physical_id",
    "name",
    "catalogues",
    "redshift",
    "log10_m500c_dyn",
    "log10_m500c_cnn",
    "flags",
)


@app.command("catalogue")
@cli_errors
def catalogue_cmd(
    fmt: str = typer.Option("table", "--format", help="table, csv, json, fits or votable"),
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (needed for fits, votable)")
    ] = None,
    match_set: Annotated[
        list[int] | None,
        typer.Option(
            "--match-set",
            help="Use this match set for its catalogue pair instead of the latest (repeatable)",
        ),
    ] = None,
) -> None:
    """Print or write the mass catalogue: one row per physical cluster (v_mass_catalogue).

    Masses are log10 M500c in h^-1 Msun, errors in dex; see docs/sql.md, "The mass catalogue".
    """
    if fmt not in ("table", "csv", "json", "fits", "votable"):
        raise BinEdgesError(f"--format {fmt!r}: choose table, csv, json, fits or votable")
    if fmt in ("fits", "votable") and out is None:
        raise typer.BadParameter(f"--format {fmt} writes a file: give --out FILE")
    if fmt == "table" and out is not None:
        raise typer.BadParameter("--out writes csv, json, fits or votable: give --format")
    with reader_session() as session:
        rows = mass_catalogue.mass_catalogue_rows(session, list(match_set or []) or None)
    if fmt == "json":
        text = json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in rows], default=str)
        if out is None:
            console.print_json(text)
        else:
            out.write_text(text + "\n")
    elif fmt == "table":
        shown = [
            {**r, "catalogues": ", ".join(r["catalogues"]), "flags": ", ".join(r["flags"])}
            for r in rows
        ]
        _emit(
            shown,
            "table",
            f"mass catalogue: {len(rows)} physical clusters",
            _CATALOGUE_TABLE_COLUMNS,
        )
    else:
        columns, flat = mass_catalogue.flatten_mass_catalogue(rows)
        if fmt == "csv" and out is None:
            _emit(flat, "csv", "", columns)
            return
        assert out is not None
        _write_table(flat, columns, out, "ascii.csv" if fmt == "csv" else fmt)
    if out is not None:
        err_console.print(plain(f"{len(rows)} physical clusters written to {out} ({fmt})"))


def _write_table(rows: list[dict[str, Any]], columns: list[str], out: Path, fmt: str) -> None:
    """Write flat rows with astropy (masked cells where a value is missing)."""
    # lazy: start-up (astropy loads only for the command that writes a file)
    from astropy.table import MaskedColumn, Table

    table = Table()
    for c in columns:
        values = [r[c] for r in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            data, fill = [v if v is not None else 0 for v in values], 0
        elif present and all(isinstance(v, int | float) for v in present):
            data, fill = [float(v) if v is not None else float("nan") for v in values], 0.0
        else:
            data, fill = ["" if v is None else str(v) for v in values], ""
        mask = [v is None for v in values]
        table[c] = MaskedColumn(data, mask=mask, fill_value=fill) if any(mask) else data
    table.meta["comments"] = ["masses: log10 M500c [h^-1 Msun]; errors: dex (clustermass)"]
    if fmt == "fits":
        table.meta.pop("comments")
        table.meta["COMMENT"] = "masses: log10 M500c [h^-1 Msun]; errors: dex (clustermass)"
    table.write(out, format=fmt, overwrite=True)
