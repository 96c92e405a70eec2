"""Deployments served by ``clustermass serve``: the inbox watcher on a schedule, the rest on demand.

* ``watch-inbox``: every ``inbox_interval_s`` (default 10 min) and nightly, every file dropped in
  the inbox (catalogue tables, image-set / galaxy YAML manifests) goes through the survey
  ingester on a ``cpu`` worker. A file is identified by its sha256, so files already seen are
  skipped and a rerun writes nothing twice.
* ``ingest-simulation``, ``train-models``, ``predict``, ``attribute``, ``report``: run from the
  Prefect UI or ``prefect deployment run`` with parameters.

Scale-out is Prefect's and Celery's own: run ``clustermass serve`` once, and as many
``clustermass worker --queue gpu`` processes on GPU hosts as there are GPUs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.schedules import Cron, Interval

from flows._common import run_celery, table_artifact, transient_retries
from flows.estimate import attribute, predict
from flows.report import report
from flows.simulate import ingest_simulation
from flows.train import resume_training, train_models
from services.settings import get_settings

__all__ = ["watch_inbox", "inbox_files", "build_deployments", "serve_all"]

#: Files that are never ingested: hidden files, partial downloads, editor droppings.
_IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", "~")


def inbox_files(inbox: Path) -> list[Path]:
    """Files in ``inbox`` (recursively) that look complete, sorted by name.

    Image files referenced by a YAML manifest are ingested through that manifest; a bare image
    is refused by the ingester with a message saying so (and recorded, so it is not retried).
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        return []
    files = []
    for path in sorted(inbox.rglob("*")):
        if not path.is_file() or any(
            part.startswith(".") for part in path.relative_to(inbox).parts
        ):
            continue
        if path.name.endswith(_IGNORED_SUFFIXES):
            continue
        files.append(path)
    return files


def _paths_in(node: Any, base: Path) -> set[Path]:
    """Existing files named by the strings of a parsed YAML document (relative to ``base``)."""
    if isinstance(node, dict):
        return set().union(*(_paths_in(v, base) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_paths_in(v, base) for v in node))
    if isinstance(node, str) and "." in node and not node.startswith("/"):
        candidate = (base / node).resolve()
        if candidate.is_file():
            return {candidate}
    return set()


def _referenced_by_manifests(files: list[Path]) -> set[Path]:
    """Files named inside YAML manifests of the inbox (ingested through their manifest)."""
    import yaml

    referenced: set[Path] = set()
    for path in files:
        if path.suffix.lower() not in (".yaml", ".yml"):
            continue
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue

        referenced |= _paths_in(doc, path.parent)
    return referenced


@task(name="ingest-file", **transient_retries(5, 30, 120))
def ingest_file_task(path: str) -> dict[str, Any]:
    """Ingest one inbox file on a cpu worker (idempotent by checksum)."""
    return run_celery("clustermass.ingest_survey_file", path)


@flow(name="watch-inbox")
def watch_inbox(inbox: str | None = None) -> list[dict[str, Any]]:
    """Ingest every new file in the inbox directory; files already ingested are skipped."""
    logger = get_run_logger()
    folder = Path(inbox) if inbox else get_settings().inbox_dir
    if folder is None:
        raise ValueError("no inbox: pass `inbox` or set CLUSTERMASS_INBOX_DIR")
    files = inbox_files(folder)
    referenced = _referenced_by_manifests(files)
    todo = [f for f in files if f.resolve() not in referenced]
    logger.info(
        "%d file(s) in %s (%d through their manifests)", len(files), folder, len(referenced)
    )
    reports = [ingest_file_task(str(f)) for f in todo]
    rows = [
        {
            k: r.get(k)
            for k in ("path", "kind", "status", "catalogue", "n_rows", "n_rejected", "message")
        }
        for r in reports
    ]
    if rows:
        table_artifact("watch-inbox", rows, f"Inbox {folder}: {len(rows)} file(s) examined")
    return rows


def build_deployments(
    inbox: Path | None, *, inbox_interval_s: int = 600, nightly_cron: str = "0 2 * * *"
) -> list[Any]:
    """Return the deployments ``clustermass serve`` runs (inbox watcher scheduled)."""
    deployments = []
    if inbox is not None:
        deployments.append(
            watch_inbox.to_deployment(
                name="inbox",
                parameters={"inbox": str(inbox)},
                schedules=[
                    Interval(timedelta(seconds=inbox_interval_s)),
                    Cron(nightly_cron, timezone="UTC"),
                ],
                description="Ingest new survey files dropped in the inbox (idempotent by checksum)",
                tags=["ingest", "survey"],
            )
        )
    deployments.append(
        ingest_simulation.to_deployment(name="on-demand", tags=["ingest", "simulation"])
    )
    for on_demand in (train_models, resume_training, predict, attribute, report):
        deployments.append(on_demand.to_deployment(name="on-demand"))
    return deployments


def serve_all(inbox: Path | None, **kwargs: Any) -> None:
    """Serve every deployment until interrupted (Prefect's own scheduler and runner)."""
    from prefect import serve

    serve(*build_deployments(inbox, **kwargs))
