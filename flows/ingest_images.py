"""Prefect flows for observed images and member galaxies (work in :mod:`services.jobs.ingest_observed`)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from db.survey import IngestReport
from flows.ingest_survey import _db_task, publish
from services.jobs.ingest_observed import ingest_galaxy_table, ingest_image_set
from survey.specs import ClusterRef

__all__ = ["ingest_images", "ingest_galaxies"]


@_db_task
def ingest_image_set_task(manifest: str, force: bool) -> IngestReport:
    """Reproject an image set onto the model grid and store its products."""
    return ingest_image_set(manifest, force=force)


@_db_task
def ingest_galaxies_task(
    path: str, spec: str | None, cluster: dict[str, Any] | None, force: bool
) -> IngestReport:
    """Ingest a member-galaxy table of one cluster."""
    ref = ClusterRef.model_validate(cluster) if cluster else None
    return ingest_galaxy_table(path, spec=spec, cluster=ref, force=force)


@flow(name="ingest-images")
def ingest_images(manifest: str, force: bool = False) -> dict[str, Any]:
    """Ingest an X-ray image set (YAML manifest: counts, exposure, background per band)."""
    logger = get_run_logger()
    report = ingest_image_set_task(manifest, force)
    logger.info(report.message)
    publish([report], key="ingest-images")
    return {"status": report.status, "cluster_ids": report.cluster_ids,
            "products": report.products, "message": report.message}  # fmt: skip


@flow(name="ingest-galaxies")
def ingest_galaxies(
    path: str,
    spec: str | None = None,
    cluster: dict[str, Any] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Ingest a spectroscopic member table (``cluster``: a ClusterRef mapping)."""
    logger = get_run_logger()
    report = ingest_galaxies_task(path, spec, cluster, force)
    logger.info(report.message)
    publish([report], key="ingest-galaxies")
    return {"status": report.status, "message": report.message, **report.extra}
