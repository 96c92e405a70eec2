"""Ingest survey catalogues into the database, and cross-match them.

* :func:`ingest_catalogue_file` - one catalogue file, one transaction, idempotent by
  (file, spec) content: :func:`db.survey.ingest_key`;
* :func:`crossmatch_catalogues` - sky + redshift matches between two ingested catalogues.

Jobs: they join the readers of :mod:`survey` and the writes of :mod:`db.survey`; no Prefect.
The CLI calls them in-process; ``flows/ingest_survey.py`` wraps them in tasks with retries for
transient database errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from sqlalchemy.engine import Engine

from db import mass_catalogue as dbm
from db import survey as dbs
from db.session import session_scope
from services.database import ready_engine
from survey.catalogues import ParsedCatalogue, parse_catalogue_table, read_catalogue
from survey.crossmatch import check_limits, crossmatch, describe_method
from survey.errors import SurveyError
from survey.files import file_identity, read_table
from survey.specs import CatalogueSpec, detect_spec, load_spec

__all__ = [
    "CrossmatchReport",
    "resolve_catalogue_spec",
    "parse_catalogue_file",
    "ingest_catalogue_file",
    "crossmatch_catalogues",
]

logger = logging.getLogger(__name__)


def resolve_catalogue_spec(
    path: Path, spec: str | Path | CatalogueSpec | None = None
) -> tuple[CatalogueSpec, Table | None]:
    """Return the spec to read a catalogue with: the given one, or the shipped one that fits.

    Returns the spec and, when it was detected, the table read to detect it (parse that one).
    """
    if spec is not None:
        return load_spec(spec), None
    table = read_table(path, "auto", 1)
    chosen = detect_spec(table.colnames, file=str(path))
    logger.info("%s: using shipped spec %r (detected from its columns)", path, chosen.name)
    return chosen, table


def parse_catalogue_file(
    path: Path, spec: str | Path | CatalogueSpec | None = None
) -> ParsedCatalogue:
    """Read a catalogue with a spec, or with the one shipped spec whose columns fit."""
    path = Path(path)
    chosen, table = resolve_catalogue_spec(path, spec)
    if table is None:
        return read_catalogue(path, chosen)
    parsed = parse_catalogue_table(table, chosen, path=path)
    parsed.sha256, parsed.size_bytes = file_identity(path)
    return parsed


def catalogue_identity(spec: CatalogueSpec) -> dict[str, Any]:
    """Return what, besides the file, decides a catalogue ingestion: the spec's content."""
    return {"spec": spec.model_dump(mode="json")}


def ingest_catalogue_file(
    path: Path | str,
    spec: str | Path | CatalogueSpec | None = None,
    *,
    engine: Engine | None = None,
    force: bool = False,
) -> dbs.IngestReport:
    """Ingest one catalogue file (all good rows + a rejects table) in one transaction.

    The ingestion's identity is the file's content and the spec's content
    (:func:`db.survey.ingest_key`): the same file with a corrected spec, or read into another
    catalogue, is ingested again (no ``force`` needed); each catalogue read from a file keeps
    its own ``ingest_files`` row. Re-ingesting replaces that catalogue's rows (rows no longer in
    the file are removed from it), in the same transaction.

    Parameters
    ----------
    path : Path
        FITS, CSV, ECSV or VOTable file.
    spec : str, Path or CatalogueSpec, optional
        Shipped spec name, YAML path or object; default: the shipped spec whose columns fit
        (then a file already ingested with any spec is skipped: give the spec to re-ingest).
    engine : Engine, optional
        Database engine (default: the configured one).
    force : bool
        Re-ingest even if this exact file with this exact spec was ingested before (upserts:
        no duplicates).

    Returns
    -------
    IngestReport
        ``status`` is ``ingested``, ``partial`` (some rows rejected) or ``skipped`` (the same
        file with the same spec was already ingested: nothing done).

    Raises
    ------
    SurveyError
        The file cannot be used at all (not a table, truncated, missing mapped columns, too many
        bad rows, bad spec). The refusal is recorded in ``ingest_files`` and nothing else is
        written.
    """
    path = Path(path).resolve()
    engine = ready_engine(engine=engine)
    sha, size = file_identity(path)
    if spec is None and not force:
        # "Whatever this file is" (the inbox): a file already ingested, with any spec, is not
        # re-read; giving the spec is how to re-ingest it with another one.
        with session_scope(engine) as s:
            seen = dbs.find_ingested_file(s, sha, "catalogue")
            if seen is not None:
                report = dbs.already_ingested_report(seen, str(path))
                logger.info(report.message)
                return report
    try:
        chosen, table = resolve_catalogue_spec(path, spec)
    except SurveyError as exc:
        key = dbs.ingest_key(sha, "catalogue", spec=str(spec))
        dbs.record_refusal(engine, path, sha, size, "catalogue", exc, key=key)
        raise
    identity = catalogue_identity(chosen)
    key = dbs.ingest_key(sha, "catalogue", **identity)
    with session_scope(engine) as s:
        seen = dbs.find_ingested(s, key)
        if seen is not None and not force:
            report = dbs.already_ingested_report(seen, str(path))
            logger.info(report.message)
            return report
    try:
        if table is None:
            parsed = read_catalogue(path, chosen, sha256=sha)
        else:
            parsed = parse_catalogue_table(table, chosen, path=path)
    except SurveyError as exc:
        dbs.record_refusal(engine, path, sha, size, "catalogue", exc, key=key)
        raise
    parsed.sha256, parsed.size_bytes = sha, size
    options = {"spec_name": chosen.name, "spec_sha256": dbs.ingest_key("", "spec", **identity)}
    with session_scope(engine) as s:
        report = dbs.ingest_parsed_catalogue(s, parsed, key=key, options=options)
    logger.info(report.message)
    return report


@dataclass
class CrossmatchReport:
    """Outcome of a catalogue cross-match: the match set it wrote (or rewrote)."""

    catalogue_a: str
    catalogue_b: str
    n_a: int
    n_b: int
    n_matches: int
    median_sep_arcsec: float
    median_dz: float
    method: str
    match_set_id: int = 0
    match_set: str = ""
    replaced: bool = False
    n_previous: int = 0


def crossmatch_catalogues(
    catalogue_a: str,
    catalogue_b: str,
    *,
    max_sep_arcsec: float = 180.0,
    max_dz: float | None = 0.05,
    relative_dz: bool = False,
    engine: Engine | None = None,
) -> CrossmatchReport:
    """Match every cluster of A to its nearest in B and store the pairs as a match set.

    The set is named by the two catalogues and the parameters: the same parameters again
    replace that set's pairs (one transaction), other parameters make a new set; the newest
    set of a pair of catalogues is the one the views and the CLI use (:mod:`db.mass_catalogue`).
    Defaults (3 arcmin, |dz| <= 0.05) recover 220 of the 220 MCXC identifications that the
    SPIDERS/CODEX table lists itself, plus one more pair (see docs/observed.md).

    Raises
    ------
    survey.errors.CrossmatchError
        NaN, infinite or non-positive ``max_sep_arcsec``; NaN, infinite or negative ``max_dz``.
    db.errors.ClusterNotFoundError
        A catalogue of that name does not exist.
    """
    check_limits(max_sep_arcsec, max_dz)  # before any database work
    engine = ready_engine(engine=engine)
    method = describe_method(max_sep_arcsec, max_dz, relative_dz)
    params = {
        "max_sep_arcsec": float(max_sep_arcsec),
        "max_dz": None if max_dz is None else float(max_dz),
        "relative_dz": bool(relative_dz),
    }
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
        stored = dbm.store_match_set(
            s, catalogue_a, catalogue_b, pairs, params=params, method=method
        )
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
        stored.id,
        stored.name,
        stored.replaced,
        stored.n_previous,
    )
