"""Flow ``report``: benchmark table and scatter by mass and redshift bin, as Prefect artifacts."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows._common import (
    image_markdown,
    markdown_artifact,
    run_celery,
    table_artifact,
    transient_retries,
)
from services.jobs.data import resolve_catalogue_id

__all__ = ["report"]


@task(name="build-report", **transient_retries(5, 30, 120))
def report_task(
    catalogue_id: int, run_ids: list[int] | None, n_boot: int, predicted_only: bool = False
) -> dict[str, Any]:
    """Build the report on a cpu worker."""
    return run_celery("clustermass.report", catalogue_id, run_ids, n_boot, predicted_only)


@flow(name="report")
def report(
    catalogue: str,
    run_ids: list[int] | None = None,
    n_boot: int = 1000,
    predicted_only: bool = False,
) -> dict[str, Any]:
    """Benchmark (scalar proxies, CNNs, oracle) and scatter-by-bin tables of a catalogue.

    ``predicted_only``: the benchmark table on the clusters every run predicted (runs trained
    on some of the folds), so proxies and networks are compared on the same clusters.
    """
    from pathlib import Path

    logger = get_run_logger()
    out = report_task(resolve_catalogue_id(catalogue), run_ids, n_boot, predicted_only)
    keep = (
        "observable",
        "n",
        "sigma_lnM",
        "sigma_lnM_lo",
        "sigma_lnM_hi",
        "bias_dex",
        "paper_sigma_lnM",
    )
    table_artifact(
        "benchmark",
        [{k: r.get(k) for k in keep} for r in out["benchmark"]],
        f"Benchmark on {out['catalogue']}",
    )
    for run_id, axes in out["scatter_by_bin"].items():
        for axis, bins in axes.items():
            table_artifact(
                f"scatter-run-{run_id}-by-{axis}", bins, f"Run {run_id}: scatter by {axis}"
            )
    markdown_artifact(
        "benchmark-figure",
        Path(out["files"]["markdown"]).read_text()
        + "\n"
        + image_markdown(out["files"]["figure"], "Predicted vs true mass"),
        f"Benchmark on {out['catalogue']}",
    )
    logger.info("report files: %s", out["files"])
    return out
