"""Flows ``predict`` and ``attribute``: apply a trained run, and explain it (gpu queue)."""

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
from services.jobs.params import AttributeParams

__all__ = ["predict", "attribute"]


@task(name="predict-catalogue", **transient_retries(5, 30, 120))
def predict_task(run_id: int, catalogue_id: int) -> dict[str, Any]:
    """Predict on a gpu worker."""
    return run_celery("clustermass.predict", run_id, catalogue_id)


@flow(name="predict")
def predict(run_id: int, catalogue: str) -> dict[str, Any]:
    """Predict the masses of a catalogue's clusters with run ``run_id``.

    Mock clusters of the training catalogue keep their out-of-fold predictions; other clusters
    (including observed ones) get the mean of the run's fold models. Observed inputs are out of
    the training domain: the caveats are logged and published with the table.
    """
    logger = get_run_logger()
    report = predict_task(run_id, resolve_catalogue_id(catalogue))
    logger.info(
        "run %s on %s: %d predicted, %d already had one or were skipped",
        run_id,
        report["catalogue"],
        report["n_predicted"],
        report["n_skipped"],
    )
    for caveat in report["caveats"]:
        logger.warning("caveat: %s", caveat)
    if report["rows"]:
        rows = [
            {k: v for k, v in r.items() if k not in ("caveats", "area_correction")}
            for r in report["rows"]
        ]
        table_artifact("predict", rows, f"Run {run_id} on {report['catalogue']}")
    if report["caveats"]:
        markdown_artifact(
            "predict-caveats",
            "## Caveats\n\n" + "\n".join(f"- {c}" for c in report["caveats"]),
            "Observed inputs are outside the training domain",
        )
    return report


@task(name="attribute-run", **transient_retries(30, 300))
def attribute_task(params: AttributeParams) -> dict[str, Any]:
    """Attribute on a gpu worker."""
    return run_celery("clustermass.attribute", params.model_dump(mode="json"))


@flow(name="attribute")
def attribute(params: AttributeParams) -> dict[str, Any]:
    """Saliency maps (and integrated gradients / SmoothGrad) of a run, with population summaries."""
    run_id = params.run_id
    logger = get_run_logger()
    out = attribute_task(params)
    for method, res in out.items():
        s = res["summary"]
        logger.info("%s: %d clusters; summary keys %s", method, res["n_clusters"], sorted(s)[:8])
        md = [f"## {method}: {res['n_clusters']} clusters", "", "```json", _short(s), "```", ""]
        for name, path in res["figures"].items():
            md.append(image_markdown(path, f"{method}: {name}"))
        markdown_artifact(f"attribute-{method.replace('_', '-')}", "\n".join(md), f"Run {run_id}")
    return out


def _short(summary: dict[str, Any]) -> str:
    import json

    flat = {k: v for k, v in summary.items() if not isinstance(v, list | dict)}
    return json.dumps(flat, indent=1, default=str)
