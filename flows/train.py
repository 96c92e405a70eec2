"""Flow ``train-models``: cross-validated training of the CNNs on a catalogue.

Each fold is a Celery task on the ``gpu`` queue: with N GPU workers, N folds train at once. The
flow waits for all folds, then finalises the run (metrics from the out-of-fold predictions).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows._common import (
    run_celery,
    submit_celery,
    table_artifact,
    transient_retries,
    wait_celery,
)
from models.config import RunConfig, deep_update
from services.jobs.data import resolve_catalogue_id

__all__ = ["train_models", "load_config"]

ALL_KINDS = ("single", "multi", "multimodal")


@task(name="create-run", **transient_retries(5, 30, 120))
def create_run_task(catalogue_id: int, config: dict[str, Any], name: str | None) -> dict:
    """Create (or find) the run row and its fold rows."""
    return run_celery("clustermass.create_run", catalogue_id, config, name)


@task(name="train-folds", **transient_retries(30, 300))
def train_folds_task(run_id: int, folds: list[int]) -> list[dict[str, Any]]:
    """Submit every fold to the gpu queue at once, then wait for all of them."""
    logger = get_run_logger()
    pending = [(f, submit_celery("clustermass.train_fold", run_id, f)) for f in folds]
    results = []
    for fold, res in pending:
        out = wait_celery("clustermass.train_fold", res)
        logger.info(
            "run %s fold %s: %s",
            run_id,
            fold,
            {k: out.get(k) for k in ("sigma_lnM", "bias_dex", "seconds")},
        )
        results.append(out)
    return results


@task(name="finalize-run", **transient_retries(5, 30, 120))
def finalize_task(run_id: int) -> dict[str, Any]:
    """Metrics of the run from its stored out-of-fold predictions."""
    return run_celery("clustermass.finalize_run", run_id)


def load_config(kind: str, config_path: str | None, overrides: dict[str, Any] | None) -> dict:
    """Validate a run config here, before any task is queued: file, then kind, then overrides.

    Returns the complete :class:`models.RunConfig` (paper defaults filled in) as a JSON mapping.
    """
    merged = deep_update({"model": {"kind": kind}}, overrides or {})
    return RunConfig.from_config(config_path, **merged).model_dump(mode="json")


@flow(name="train-models")
def train_models(
    catalogue: str,
    kinds: list[str] | None = None,
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train each network kind with 8-fold spatial cross-validation on ``catalogue``.

    Parameters
    ----------
    catalogue : str
        Catalogue name (or id) of an ingested simulation.
    kinds : list of {'single', 'multi', 'multimodal'}
        Networks to train (default all three, as the paper).
    config_path : str, optional
        YAML run configuration (e.g. ``configs/demo.yaml``); paper defaults fill the rest.
    overrides : dict, optional
        Nested settings merged last, e.g. ``{"training": {"max_epochs": 5}}``.
    """
    logger = get_run_logger()
    cat_id = resolve_catalogue_id(catalogue)
    configs = {k: load_config(k, config_path, overrides) for k in kinds or ALL_KINDS}
    summaries = []
    for kind, cfg in configs.items():
        created = create_run_task(cat_id, cfg, None)
        run_id, folds = created["run_id"], created["folds"]
        logger.info("%s: run %s, folds %s", kind, run_id, folds)
        train_folds_task(run_id, folds)
        summary = finalize_task(run_id)
        summaries.append(
            {
                "kind": kind,
                **{
                    k: summary.get(k)
                    for k in (
                        "run_id",
                        "status",
                        "n",
                        "sigma_lnM",
                        "sigma_lnM_lo",
                        "sigma_lnM_hi",
                        "bias_dex",
                    )
                },
            }
        )
    table_artifact("train-models", summaries, f"Cross-validated runs on catalogue {catalogue}")
    return summaries
