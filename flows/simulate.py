"""Flow ``ingest-simulation``: generate (or reuse) a mock catalogue and ingest it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from flows._common import run_celery, table_artifact, transient_retries
from services.settings import get_settings

__all__ = ["ingest_simulation"]


@task(name="generate-mock", **transient_retries(10, 60))
def generate_task(config: dict[str, Any], out_dir: str) -> str:
    """Generate the mock on a cpu worker (reused when the directory already matches)."""
    return run_celery("clustermass.generate_mock", config, out_dir)


@task(name="ingest-mock", **transient_retries(5, 30, 120))
def ingest_task(mock_dir: str, catalogue_name: str | None) -> dict[str, Any]:
    """Ingest the mock directory (an upsert: re-running writes nothing twice)."""
    return run_celery("clustermass.ingest_simulation", mock_dir, catalogue_name)


@flow(name="ingest-simulation")
def ingest_simulation(
    n_clusters: int = 3300,
    seed: int = 1,
    config: dict[str, Any] | None = None,
    mock_dir: str | None = None,
    catalogue_name: str | None = None,
    preset: str = "erass",
) -> dict[str, Any]:
    """Generate a mock catalogue (or take ``mock_dir``) and ingest it into the database.

    Parameters
    ----------
    n_clusters, seed : int
        Size and seed of the mock (ignored when ``mock_dir`` already holds one).
    config : dict, optional
        Further :class:`mocks.MockConfig` fields.
    mock_dir : str, optional
        Where the mock is (or is to be) written; default
        ``<data_dir>/mocks/s<seed>-n<n>[-<preset>]``.
    preset : {'erass', 'paper'}
        Mock preset (:data:`mocks.config.PRESETS`): eROSITA-depth maps with backgrounds, or the
        regime of Ho+23 (ICM + AGN photons only, their snapshot redshifts).
    """
    logger = get_run_logger()
    cfg = {**(config or {}), "n_clusters": n_clusters, "seed": seed, "preset": preset}
    folder = f"s{seed}-n{n_clusters}" + ("" if preset == "erass" else f"-{preset}")
    out = mock_dir or str(Path(get_settings().data_dir) / "mocks" / folder)
    out = generate_task(cfg, out)
    logger.info("mock catalogue in %s", out)
    summary = ingest_task(out, catalogue_name)
    logger.info("ingested %s", summary)
    table_artifact("ingest-simulation", [summary], f"Rows after ingesting {out}")
    return summary
