"""Flow ``train-models``: cross-validated training of the CNNs on a catalogue.

Each fold is a Celery task on the ``gpu`` queue, waited for by its own Prefect task run
(``train-fold-<n>``: the UI shows every fold's state, retries and duration). With a broker all
folds are sent at once (N GPU workers train N folds at once); in eager mode they run here, one
after the other. The flow then finalises the run (metrics from the out-of-fold predictions).

While it drives a run the flow heartbeats ``model_runs.heartbeat_at``; an interrupt (Ctrl-C, a
Prefect cancel) revokes the run's Celery tasks and marks the run ``cancelled``. A run left
``running`` by a dead process, or cancelled, resumes fold by fold with flow ``resume-run``
(``clustermass fit --resume RUN``): finished folds are kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import flow, get_run_logger, task

from astro.numbers import format_number
from flows._common import (
    revoke_in_flight,
    run_celery,
    table_artifact,
    transient_retries,
)
from models.config import RunConfig, deep_update
from services.jobs import training as training_jobs
from services.jobs.data import resolve_catalogue_id
from services.progress import emit
from services.settings import get_settings

__all__ = ["train_models", "resume_training", "load_config"]

ALL_KINDS = ("single", "multi", "multimodal")


@task(name="create-run", **transient_retries(5, 30, 120))
def create_run_task(catalogue_id: int, config: dict[str, Any], name: str | None) -> dict:
    """Create (or find) the run row and its fold rows."""
    return run_celery("clustermass.create_run", catalogue_id, config, name)


@task(name="train-fold", task_run_name="train-fold-{fold}", **transient_retries(30, 300))
def train_fold_task(run_id: int, fold: int) -> dict[str, Any]:
    """Train one fold on a gpu worker (or here, in eager mode) and wait for it."""
    out = run_celery("clustermass.train_fold", run_id, fold)
    metrics = {k: out.get(k) for k in ("sigma_lnM", "bias_dex", "seconds")}
    get_run_logger().info(
        "run %s fold %s done: sigma_lnM %s, bias %s dex, %s s",
        run_id, fold, format_number(metrics["sigma_lnM"]), format_number(metrics["bias_dex"]),
        format_number(metrics["seconds"], decimals=1),
    )  # fmt: skip
    emit({"kind": "fold-done", "run_id": run_id, "fold": fold, **metrics})
    return out


@task(name="reopen-run", **transient_retries(5, 30, 120))
def reopen_run_task(run_id: int) -> dict[str, Any]:
    """Make the run's unfinished folds pending again; refuse a run a live flow drives."""
    return training_jobs.reopen_run(run_id)


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
        summaries.append(_summary(kind, _drive_run(run_id, folds, kind)))
    table_artifact("train-models", summaries, f"Cross-validated runs on catalogue {catalogue}")
    return summaries


@flow(name="resume-run")
def resume_training(run_id: int) -> dict[str, Any]:
    """Resume run ``run_id`` fold by fold: its finished folds are kept, the others trained.

    For a run that was cancelled, failed, or left ``running`` by a dead process (no flow
    heartbeat for ``CLUSTERMASS_RUN_STALE_S``); a run a live flow still drives is refused.
    """
    logger = get_run_logger()
    reopened = reopen_run_task(run_id)
    logger.info("run %s: resuming folds %s", run_id, reopened["folds"])
    return _summary(reopened["kind"], _drive_run(run_id, reopened["folds"], reopened["kind"]))


def _summary(kind: str, summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "status", "n", "sigma_lnM", "sigma_lnM_lo", "sigma_lnM_hi", "bias_dex")
    return {"kind": kind, **{k: summary.get(k) for k in keys}}


def _drive_run(run_id: int, folds: list[int], kind: str) -> dict[str, Any]:
    """Train ``folds`` of a run (one Prefect task run each), then finalise it.

    An interrupt revokes the run's Celery tasks and marks the run ``cancelled`` before it
    propagates; an error marks it ``failed`` (with the error): both resume with
    :func:`resume_training`, keeping the folds that finished.
    """
    emit({"kind": "run", "run_id": run_id, "model": kind, "folds": list(folds)})
    try:
        with _run_heartbeat(run_id):
            if get_settings().celery_eager:  # in-process: one fold after the other
                for fold in folds:
                    train_fold_task(run_id, fold)
            else:
                futures = [train_fold_task.submit(run_id, fold) for fold in folds]
                for future in futures:
                    future.result()
    except BaseException as exc:
        if not isinstance(exc, Exception):  # Ctrl-C, a Prefect cancel (SIGTERM), exit
            revoked = revoke_in_flight()
            reason = f"cancelled ({type(exc).__name__}); {len(revoked)} Celery task(s) revoked"
            training_jobs.cancel_run(run_id, reason)
            get_run_logger().warning("run %s %s", run_id, reason)
        else:
            training_jobs.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        raise
    return finalize_task(run_id)


@contextmanager
def _run_heartbeat(run_id: int) -> Iterator[None]:
    """Refresh ``model_runs.heartbeat_at`` every ``CLUSTERMASS_HEARTBEAT_S`` while the block runs.

    A run still ``running`` whose heartbeat is older than ``CLUSTERMASS_RUN_STALE_S`` was left
    by a dead process (``clustermass runs recover``).
    """
    every = get_settings().heartbeat_s
    stop = threading.Event()

    def beat() -> None:
        while True:
            # a missed heartbeat (database briefly away) is retried at the next one
            with contextlib.suppress(Exception):
                training_jobs.touch_run(run_id)
            if stop.wait(every):
                return

    thread = threading.Thread(target=beat, name=f"run-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
