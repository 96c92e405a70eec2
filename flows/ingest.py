"""Ingest survey files into the database: the library functions behind the CLI and the flows.

* :func:`ingest_catalogue_file` - one catalogue file, one transaction, idempotent by sha256;
* :func:`crossmatch_catalogues` - sky + redshift matches between two ingested catalogues;
* :func:`ingest_path` - what an inbox watcher calls: dispatches on the file type (catalogue
  table, image-set / galaxy / catalogue YAML) and never raises for bad input (the report says
  ``rejected`` and why).

These functions import no Prefect: the CLI calls them directly; ``flows/ingest_survey.py`` and
``flows/ingest_images.py`` wrap them in tasks with retries for transient database errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from db import survey as dbs
from db.errors import ClusterNotFoundError
from db.session import session_scope
from flows.survey.catalogues import ParsedCatalogue, parse_catalogue_table, read_catalogue
from flows.survey.crossmatch import crossmatch, describe_method
from flows.survey.errors import ImageError, SurveyError
from flows.survey.specs import CatalogueSpec, detect_spec, load_any, load_spec
from flows.survey.tables import detect_format, read_table, sha256_path

__all__ = [
    "CrossmatchReport",
    "resolve_engine",
    "parse_catalogue_file",
    "ingest_catalogue_file",
    "crossmatch_catalogues",
    "ingest_path",
]

logger = logging.getLogger(__name__)


def resolve_engine(engine: Engine | None = None) -> Engine:
    """Return the given engine, or the configured one (checked: reachable, schema at head)."""
    if engine is not None:
        return engine
    from services.database import ready_engine

    return ready_engine()


def file_identity(path: Path) -> tuple[str, int]:
    """Return the sha256 and size [bytes] of a file (SurveyError if it does not exist)."""
    if not path.is_file():
        raise SurveyError(f"{path}: no such file")
    return sha256_path(path), path.stat().st_size


def parse_catalogue_file(
    path: Path, spec: str | Path | CatalogueSpec | None = None
) -> ParsedCatalogue:
    """Read a catalogue with a spec, or with the one shipped spec whose columns fit the file."""
    path = Path(path)
    if spec is not None:
        return read_catalogue(path, spec)
    table = read_table(path, "auto", 1)
    chosen = detect_spec(table.colnames, file=str(path))
    logger.info("%s: using shipped spec %r (detected from its columns)", path, chosen.name)
    parsed = parse_catalogue_table(table, chosen, path=path)
    parsed.sha256, parsed.size_bytes = file_identity(path)
    return parsed


def record_refusal(
    engine: Engine, path: Path, sha: str, size: int, kind: str, exc: Exception
) -> None:
    """Record a refused file in its own transaction (never overwrites a success)."""
    with session_scope(engine) as s:
        dbs.record_refused(
            s, path=str(path), sha256=sha, size_bytes=size, kind=kind, message=str(exc)
        )


def ingest_catalogue_file(
    path: Path | str,
    spec: str | Path | CatalogueSpec | None = None,
    *,
    engine: Engine | None = None,
    force: bool = False,
) -> dbs.IngestReport:
    """Ingest one catalogue file (all good rows + a rejects table) in one transaction.

    Parameters
    ----------
    path : Path
        FITS, CSV, ECSV or VOTable file.
    spec : str, Path or CatalogueSpec, optional
        Shipped spec name, YAML path or object; default: the shipped spec whose columns fit.
    engine : Engine, optional
        Database engine (default: the configured one).
    force : bool
        Re-ingest even if this exact file (sha256) was ingested before (upserts: no duplicates).

    Returns
    -------
    IngestReport
        ``status`` is ``ingested``, ``partial`` (some rows rejected) or ``skipped`` (the same
        file was already ingested: nothing done).

    Raises
    ------
    SurveyError
        The file cannot be used at all (not a table, truncated, missing mapped columns, too many
        bad rows, bad spec). The refusal is recorded in ``ingest_files`` and nothing else is
        written.
    """
    path = Path(path).resolve()
    engine = resolve_engine(engine)
    sha, size = file_identity(path)
    with session_scope(engine) as s:
        seen = dbs.find_ingested(s, sha)
        if seen is not None and not force:
            report = dbs.already_ingested_report(seen, str(path))
            logger.info(report.message)
            return report
    try:
        parsed = parse_catalogue_file(path, spec)
    except SurveyError as exc:
        record_refusal(engine, path, sha, size, "catalogue", exc)
        raise
    parsed.sha256, parsed.size_bytes = sha, size
    with session_scope(engine) as s:
        report = dbs.ingest_parsed_catalogue(s, parsed)
    logger.info(report.message)
    return report


@dataclass
class CrossmatchReport:
    """Outcome of a catalogue cross-match."""

    catalogue_a: str
    catalogue_b: str
    n_a: int
    n_b: int
    n_matches: int
    median_sep_arcsec: float
    median_dz: float
    method: str


def crossmatch_catalogues(
    catalogue_a: str,
    catalogue_b: str,
    *,
    max_sep_arcsec: float = 180.0,
    max_dz: float | None = 0.05,
    relative_dz: bool = False,
    engine: Engine | None = None,
) -> CrossmatchReport:
    """Match every cluster of A to its nearest in B and store the pairs in ``cluster_matches``.

    Defaults (3 arcmin, |dz| <= 0.05) recover 220 of the 220 MCXC identifications that the
    SPIDERS/CODEX table lists itself, plus one more pair (see docs/observed.md).
    """
    import numpy as np

    engine = resolve_engine(engine)
    method = describe_method(max_sep_arcsec, max_dz, relative_dz)
    with session_scope(engine) as s:
        a = dbs.catalogue_positions(s, catalogue_a)
        b = dbs.catalogue_positions(s, catalogue_b)
        matches = crossmatch(
            a["ra"], a["dec"], a["z"], b["ra"], b["dec"], b["z"],
            max_sep_arcsec=max_sep_arcsec, max_dz=max_dz, relative_dz=relative_dz,
        )  # fmt: skip
        pairs = [
            (int(a["id"][m.index_a]), int(b["id"][m.index_b]), m.separation_arcsec, m.delta_z)
            for m in matches
        ]
        dbs.store_matches(s, pairs, method=method)
    seps = [m.separation_arcsec for m in matches]
    dzs = [m.delta_z for m in matches]
    return CrossmatchReport(
        catalogue_a,
        catalogue_b,
        len(a["id"]),
        len(b["id"]),
        len(matches),
        float(np.median(seps)) if seps else float("nan"),
        float(np.median(dzs)) if dzs else float("nan"),
        method,
    )


def _is_image_fits(path: Path) -> bool:
    """Tell whether a FITS file holds an image in its primary HDU and no table extension."""
    import warnings

    from astropy.io import fits

    try:
        with warnings.catch_warnings(), fits.open(path, memmap=False) as hdul:
            warnings.simplefilter("ignore")
            has_table = any(isinstance(h, fits.BinTableHDU | fits.TableHDU) for h in hdul)
            return not has_table and hdul[0].header.get("NAXIS", 0) >= 2
    except Exception:  # unreadable: let the catalogue reader produce the message
        return False


def ingest_path(
    path: Path | str,
    *,
    engine: Engine | None = None,
    data_dir: Path | None = None,
    force: bool = False,
) -> dbs.IngestReport:
    """Ingest whatever file this is; idempotent by checksum; never raises for bad input.

    * ``*.yaml`` / ``*.yml``: ``kind: image_set`` (X-ray images of one cluster), ``kind:
      galaxies`` (a member table with ``file`` and ``cluster``) or ``kind: catalogue`` with a
      ``file`` (a catalogue with its own spec);
    * FITS/CSV/ECSV/VOTable tables: a catalogue read with the shipped spec that fits its columns;
    * a bare FITS image: refused (an image needs a manifest naming the cluster and exposure).

    Returns
    -------
    IngestReport
        ``status='rejected'`` with the reason when the file cannot be ingested.
    """
    from flows.observed import ingest_galaxy_table, ingest_image_set

    path = Path(path).resolve()
    engine = resolve_engine(engine)
    kind = "unknown"
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            spec = load_any(path)
            kind = spec.kind
            if spec.kind == "image_set":
                return ingest_image_set(path, engine=engine, data_dir=data_dir, force=force)
            if spec.file is None:
                raise SurveyError(f"{path}: a {spec.kind} YAML dropped alone needs a 'file' entry")
            target = (path.parent / spec.file).resolve()
            if spec.kind == "galaxies":
                return ingest_galaxy_table(
                    target, spec=spec, engine=engine, data_dir=data_dir, force=force
                )
            return ingest_catalogue_file(target, load_spec(path), engine=engine, force=force)
        detect_format(path)
        if path.name.lower().endswith((".fits", ".fits.gz", ".fit", ".fts")) and _is_image_fits(
            path
        ):
            kind = "image"
            raise ImageError(
                f"{path}: a bare X-ray image cannot be ingested: write an image-set YAML "
                "(kind: image_set) naming the cluster, band, exposure map and background"
            )
        kind = "catalogue"
        return ingest_catalogue_file(path, engine=engine, force=force)
    except (SurveyError, ClusterNotFoundError, dbs.CatalogueKindError) as exc:
        logger.warning("%s", exc)
        if not path.is_file():
            return dbs.IngestReport(str(path), kind, "", "rejected", str(exc))
        sha, size = file_identity(path)
        record_refusal(engine, path, sha, size, kind, exc)  # no-op if already recorded
        return dbs.IngestReport(str(path), kind, sha, "rejected", str(exc))
