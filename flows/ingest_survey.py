"""Prefect flows for survey ingestion (thin: the work is in :mod:`services.jobs.ingest_catalogues`).

* ``ingest_survey(path, spec=None, force=False)`` - one catalogue file;
* ``crossmatch_survey(catalogue_a, catalogue_b, ...)`` - sky matches between two catalogues;
* ``ingest_inbox(paths)`` - what a deployment watching an inbox directory runs for new files
  (each file through :func:`services.jobs.ingest_inbox.ingest_path`, idempotent by checksum).

Tasks that touch the database retry only on transient database errors (connection lost,
server restarting); bad input fails at once with the reader's message. Each flow publishes a
markdown artifact (rows ingested / rejected, first rejects) and a table artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from astro.numbers import format_number
from db.survey import IngestReport
from flows._common import transient_retries
from services.jobs.ingest_catalogues import (
    CrossmatchReport,
    crossmatch_catalogues,
    ingest_catalogue_file,
)
from services.jobs.ingest_inbox import ingest_path

__all__ = ["ingest_survey", "crossmatch_survey", "ingest_inbox", "ingest_path"]

_db_task = task(**transient_retries(2, 5, 15), cache_policy=NO_CACHE)


@_db_task
def ingest_catalogue_task(path: str, spec: str | None, force: bool) -> IngestReport:
    """Ingest one catalogue file (one transaction)."""
    return ingest_catalogue_file(path, spec, force=force)


@_db_task
def crossmatch_task(
    a: str, b: str, max_sep_arcsec: float, max_dz: float | None
) -> CrossmatchReport:
    """Cross-match two ingested catalogues and store the pairs."""
    return crossmatch_catalogues(a, b, max_sep_arcsec=max_sep_arcsec, max_dz=max_dz)


@_db_task
def ingest_path_task(path: str) -> IngestReport:
    """Ingest any supported file (never raises for bad input)."""
    return ingest_path(path)


def publish(reports: list[IngestReport], *, key: str | None = None) -> str:
    """Create the markdown + table artifacts for some ingestion reports; return the markdown."""
    lines = [
        "| file | kind | status | catalogue | rows ingested | rows rejected | values dropped |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in reports:
        lines.append(
            f"| {Path(r.path).name} | {r.kind} | {r.status} | {r.catalogue or ''} | "
            f"{r.n_rows} | {r.n_rejected} | {r.n_dropped_values} |"
        )
    for r in reports:
        lines.append(f"\n**{Path(r.path).name}**: {r.message}")
        lines += [f"- {x}" for x in r.rejects[:10]]
    markdown = "\n".join(lines)
    create_markdown_artifact(markdown, key=key, description="survey ingestion summary")
    create_table_artifact([row for r in reports for row in r.summary_rows()], key=key)
    return markdown


@flow(name="ingest-survey")
def ingest_survey(path: str, spec: str | None = None, force: bool = False) -> dict[str, Any]:
    """Ingest one survey catalogue file with a mapping spec (shipped name or YAML path)."""
    logger = get_run_logger()
    report = ingest_catalogue_task(str(path), spec, force)
    logger.info(report.message)
    publish([report], key="ingest-survey")
    return {"status": report.status, "n_rows": report.n_rows, "n_rejected": report.n_rejected,
            "message": report.message}  # fmt: skip


@flow(name="crossmatch-survey")
def crossmatch_survey(
    catalogue_a: str,
    catalogue_b: str,
    max_sep_arcsec: float = 180.0,
    max_dz: float | None = 0.05,
) -> dict[str, Any]:
    """Cross-match two ingested catalogues on the sky with a redshift tolerance."""
    logger = get_run_logger()
    rep = crossmatch_task(catalogue_a, catalogue_b, max_sep_arcsec, max_dz)
    logger.info("%s x %s: %d matches (%s)", catalogue_a, catalogue_b, rep.n_matches, rep.method)
    create_markdown_artifact(
        f"**{catalogue_a} x {catalogue_b}**: {rep.n_matches} matches of {rep.n_a} x {rep.n_b} "
        f"clusters in match set {rep.match_set_id}"
        f"{' (replaced)' if rep.replaced else ' (new)'}; median separation "
        f"{rep.median_sep_arcsec:.1f} arcsec, median |dz| {format_number(rep.median_dz)} ({rep.method})",
        key="crossmatch-survey",
    )
    return {"n_matches": rep.n_matches, "method": rep.method, "match_set_id": rep.match_set_id}


@flow(name="ingest-inbox")
def ingest_inbox(paths: list[str]) -> list[dict[str, Any]]:
    """Ingest new files from an inbox (each idempotent by checksum; bad files are reported)."""
    logger = get_run_logger()
    reports = [ingest_path_task(p) for p in paths]
    for r in reports:
        (logger.warning if r.status == "rejected" else logger.info)(r.message)
    if reports:
        publish(reports, key="ingest-inbox")
    return [{"path": r.path, "status": r.status, "message": r.message} for r in reports]


if __name__ == "__main__":
    import sys

    print(ingest_survey(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
