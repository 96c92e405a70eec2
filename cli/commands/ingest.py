"""``clustermass ingest ...`` and ``clustermass crossmatch``: real survey data into the database."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from astro.numbers import format_number
from cli.commands._common import cli_errors, console, plain

app = typer.Typer(
    help="Ingest survey catalogues, X-ray images and member-galaxy tables.", no_args_is_help=True
)


def _print_report(report: object) -> None:
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from db.survey import IngestReport

    assert isinstance(report, IngestReport)
    colour = {"ingested": "green", "partial": "yellow", "skipped": "cyan", "rejected": "red"}
    title = Text.assemble((report.status, colour[report.status]), ": ", Path(report.path).name)
    table = Table(title=title)
    for col in ("kind", "catalogue", "rows ingested", "rows rejected", "values dropped"):
        table.add_column(col, justify="right" if col.startswith(("rows", "values")) else "left")
    table.add_row(
        *map(
            plain,
            (
                report.kind,
                report.catalogue or "",
                report.n_rows,
                report.n_rejected,
                report.n_dropped_values,
            ),
        )
    )
    console.print(table)
    console.print(plain(report.message))
    for line in report.rejects[:10]:
        console.print(Text.assemble("  ", ("reject", "yellow"), " ", plain(line)))
    if len(report.rejects) > 10 or report.n_rejected + report.n_dropped_values > 10:
        console.print(f"  (all rejects: table ingest_rejects, file_id {report.file_id})")
    diag = report.extra.get("diagnostics")
    if diag:
        flags = [k for k in ("few_members", "truncated") if diag.get(k)]

        def kurt(x: float | None) -> str:
            return "n/a" if x is None else f"{x:+.2f}"

        console.print(
            plain(
                f"  velocities: {diag['n_members']} members, interlopers "
                f"{report.extra.get('interlopers')}, sigma_v from {report.extra.get('estimator')}, "
                f"excess kurtosis {kurt(diag['excess_kurtosis'])} (input) / "
                f"{kurt(diag['member_excess_kurtosis'])} (members); flags: "
                f"{', '.join(flags) if flags else 'none'}"
            )
        )
    for note in report.extra.get("notes", []):
        console.print(Text.assemble("  ", plain(note, style="dim")))


@app.command("catalogue")
@cli_errors
def catalogue(
    file: Annotated[Path, typer.Argument(help="FITS, CSV, ECSV or VOTable catalogue")],
    spec: str | None = typer.Option(
        None,
        "--spec",
        help="Shipped spec name (mcxc, efeds, spiders_codex) or a YAML path; "
        "default: the shipped spec whose columns fit the file",
    ),  # fmt: skip
    force: bool = typer.Option(False, "--force", help="Re-ingest a file seen before (upserts)"),
) -> None:
    """Ingest a cluster catalogue (one transaction; bad rows go to ingest_rejects)."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from services.jobs.ingest_catalogues import ingest_catalogue_file

    with console.status(plain(f"ingesting {file.name} ...")):
        report = ingest_catalogue_file(file, spec, force=force)
    _print_report(report)


def _cluster_ref(
    cluster: str | None, catalogue_name: str | None, external_id: str | None,
    ra: float | None, dec: float | None, z: float | None,
) -> object:  # fmt: skip
    from pydantic import ValidationError

    # lazy: start-up (astropy loads only for the command that runs)
    from survey.errors import SpecError
    from survey.specs import ClusterRef

    try:
        return ClusterRef(
            name=cluster, catalogue=catalogue_name, external_id=external_id, ra=ra, dec=dec, z=z
        )
    except ValidationError as exc:
        msgs = "; ".join(e["msg"] for e in exc.errors())
        raise SpecError(
            f"which cluster? {msgs} (use --cluster NAME, --catalogue C --id X, or --ra --dec --z)"
        ) from exc


def _band(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split("-"))
    except ValueError as exc:
        raise typer.BadParameter(f"band {text!r}: write it as LO-HI in keV, e.g. 0.5-2.0") from exc
    return lo, hi


@app.command("image")
@cli_errors
def image(
    source: Annotated[
        Path, typer.Argument(help="Image-set YAML (kind: image_set) or a counts FITS")
    ],
    exposure: Annotated[
        Path | None, typer.Option(help="Exposure map (s) (with a counts FITS)")
    ] = None,
    exposure_s: float | None = typer.Option(None, help="Constant exposure (s) instead of a map"),
    background: Annotated[Path | None, typer.Option(help="Background map (counts/pixel)")] = None,
    band: str = typer.Option("0.5-2.0", help="Energy band LO-HI (keV) of a counts FITS"),
    instrument: str = typer.Option("unknown", help="Instrument, e.g. 'ROSAT PSPC'"),
    cluster: str | None = typer.Option(None, help="Cluster name (e.g. A3158)"),
    catalogue_name: str | None = typer.Option(None, "--catalogue", help="Catalogue of --id"),
    external_id: str | None = typer.Option(None, "--id", help="Cluster id in --catalogue"),
    ra: float | None = typer.Option(None, help="Cluster RA (deg) (with --dec, --z)"),
    dec: float | None = typer.Option(None, help="Cluster Dec (deg)"),
    z: float | None = typer.Option(None, help="Cluster redshift"),
    force: bool = typer.Option(False, "--force", help="Re-ingest a set seen before"),
) -> None:
    """Reproject an X-ray image (+ exposure, background) onto the model grid of a cluster."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from services.jobs.ingest_observed import ingest_image_set
    from survey.specs import ImageSetSpec

    if source.suffix.lower() in (".yaml", ".yml"):
        target: Path | ImageSetSpec = source
    else:
        ref = _cluster_ref(cluster, catalogue_name, external_id, ra, dec, z)
        band_doc = {
            "band_kev": list(_band(band)),
            "counts": str(source.resolve()),
            "exposure": str(exposure.resolve()) if exposure else None,
            "exposure_s": exposure_s,
            "background": str(background.resolve()) if background else None,
        }
        target = ImageSetSpec.model_validate(
            {
                "instrument": instrument,
                "cluster": ref,
                "bands": [band_doc],
            }
        )
    with console.status("reprojecting onto the model grid ..."):
        report = ingest_image_set(target, base_dir=Path("/") if not isinstance(target, Path)
                                  else None, force=force)  # fmt: skip
    _print_report(report)
    if report.extra.get("label"):
        console.print(plain(f"  products {report.products} labelled {report.extra['label']!r}"))


@app.command("galaxies")
@cli_errors
def galaxies(
    file: Annotated[Path, typer.Argument(help="Member table: RA, Dec and z (or cz) per galaxy")],
    spec: Annotated[
        Path | None, typer.Option(help="Galaxy spec YAML (default: guess columns)")
    ] = None,
    cluster: str | None = typer.Option(None, help="Cluster name (e.g. A3158)"),
    catalogue_name: str | None = typer.Option(None, "--catalogue", help="Catalogue of --id"),
    external_id: str | None = typer.Option(None, "--id", help="Cluster id in --catalogue"),
    ra: float | None = typer.Option(None, help="Cluster RA (deg) (with --dec, --z)"),
    dec: float | None = typer.Option(None, help="Cluster Dec (deg)"),
    z: float | None = typer.Option(None, help="Cluster redshift"),
    interlopers: str = typer.Option(
        "mixture",
        help="mixture (Gaussian + uniform background, EM; Walker+09), shifting_gapper "
        "(Fadda+96), sigma_clip (3-sigma biweight, Beers+90) or none",
    ),
    force: bool = typer.Option(False, "--force", help="Re-ingest a table seen before"),
) -> None:
    """Ingest spectroscopic members: sigma_v, N_gal and an Evrard+08 dynamical mass."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from services.jobs.ingest_observed import ingest_galaxy_table

    ref = None
    if any(v is not None for v in (cluster, catalogue_name, external_id, ra)):
        ref = _cluster_ref(cluster, catalogue_name, external_id, ra, dec, z)
    report = ingest_galaxy_table(
        file,
        spec=spec,
        cluster=ref,
        interlopers=interlopers,
        force=force,  # type: ignore[arg-type]
    )
    _print_report(report)


@app.command("any")
@cli_errors
def any_file(
    paths: Annotated[list[Path], typer.Argument(help="Files as dropped in an inbox")],
) -> None:
    """Ingest files of any supported kind, as the inbox watcher does (never stops on bad ones)."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from services.jobs.ingest_inbox import ingest_path

    for p in paths:
        _print_report(ingest_path(p))


@app.command("specs")
@cli_errors
def specs() -> None:
    """List the shipped catalogue specs."""
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from survey.specs import load_spec, shipped_specs

    table = Table(title="shipped catalogue specs")
    for col in ("name", "columns", "mass", "citation"):
        table.add_column(col)
    for name in shipped_specs():
        s = load_spec(name)
        mass = f"{s.mass.column} ({s.mass.definition})" if s.mass else "-"
        cells = (name, ", ".join(s.required_columns()[:6]), mass, s.citation[:60])
        table.add_row(*map(plain, cells))
    console.print(table)


@cli_errors
def crossmatch(
    catalogue_a: str = typer.Argument(..., help="First catalogue name (e.g. mcxc)"),
    catalogue_b: str = typer.Argument(..., help="Second catalogue name (e.g. spiders_codex)"),
    max_sep: float = typer.Option(180.0, "--max-sep", help="Largest separation (arcsec)"),
    max_dz: float = typer.Option(0.05, "--max-dz", help="Largest |z_a - z_b| (negative: no cut)"),
    relative_dz: bool = typer.Option(False, help="Cut on |dz|/(1+z) instead of |dz|"),
) -> None:
    """Cross-match two ingested catalogues on the sky (nearest neighbour + redshift cut).

    The pairs are stored as a match set named by the two catalogues and the cuts: the same
    cuts again replace that set; other cuts make a new one. The newest set of a pair of
    catalogues is the one `query catalogue` and the views use.
    """
    if not (math.isfinite(max_sep) and max_sep > 0):
        raise typer.BadParameter(f"{max_sep}: give a finite separation > 0", param_hint="--max-sep")
    if not math.isfinite(max_dz):
        raise typer.BadParameter(f"{max_dz}: give a finite number", param_hint="--max-dz")
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from services.jobs.ingest_catalogues import crossmatch_catalogues

    rep = crossmatch_catalogues(
        catalogue_a, catalogue_b, max_sep_arcsec=max_sep,
        max_dz=None if max_dz < 0 else max_dz, relative_dz=relative_dz,
    )  # fmt: skip
    console.print(
        Text.assemble(
            f"{rep.catalogue_a} ({rep.n_a}) x {rep.catalogue_b} ({rep.n_b}): ",
            (str(rep.n_matches), "bold"),
            f" matches in match set {rep.match_set_id} "
            + (f"(replaced its {rep.n_previous} previous pairs)" if rep.replaced else "(new)")
            + f"; median separation {rep.median_sep_arcsec:.1f} arcsec, median |dz| "
            f"{format_number(rep.median_dz)} ({rep.method}). It is now the set in use for this pair.",
        )
    )
