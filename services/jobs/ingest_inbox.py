"""Ingest whatever file arrives (an inbox): dispatch on the file type to the ingest job of its kind.

Never raises for bad input: the report says ``rejected`` and why, and the refusal is recorded.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from astropy.io import fits
from sqlalchemy.engine import Engine

from db import survey as dbs
from db.errors import CatalogueKindError, ClusterNotFoundError
from services.database import ready_engine
from services.jobs.ingest_catalogues import ingest_catalogue_file
from services.jobs.ingest_observed import ingest_galaxy_table, ingest_image_set
from survey.errors import ImageError, SurveyError
from survey.files import detect_format, file_identity
from survey.specs import confined_path, load_any, load_spec

__all__ = ["ingest_path"]

logger = logging.getLogger(__name__)


def _is_image_fits(path: Path) -> bool:
    """Tell whether a FITS file holds an image in its primary HDU and no table extension."""
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
    path = Path(path).resolve()
    engine = ready_engine(engine=engine)
    kind = "unknown"
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            spec = load_any(path)
            kind = spec.kind
            if spec.kind == "image_set":
                return ingest_image_set(path, engine=engine, data_dir=data_dir, force=force)
            if spec.file is None:
                raise SurveyError(f"{path}: a {spec.kind} YAML dropped alone needs a 'file' entry")
            target = confined_path(path.parent, spec.file, source=str(path), field="file")
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
    except (SurveyError, ClusterNotFoundError, CatalogueKindError) as exc:
        logger.warning("%s", exc)
        if not path.is_file():
            return dbs.IngestReport(str(path), kind, "", "rejected", str(exc))
        sha, size = file_identity(path)
        dbs.record_refusal(engine, path, sha, size, kind, exc)  # no-op if already recorded
        return dbs.IngestReport(str(path), kind, sha, "rejected", str(exc))
