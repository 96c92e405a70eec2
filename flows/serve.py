"""Deployments served by ``clustermass serve``: the inbox watcher on a schedule, the rest on demand.

* ``watch-inbox``: every file dropped in the inbox (catalogue tables, image-set / galaxy YAML
  manifests) goes through the survey ingester on a ``cpu`` worker. ``clustermass serve`` runs
  it at start-up over the whole inbox, then for each batch of new files within seconds of
  their arrival (a file watcher: :mod:`services.inbox_watch`), and, as a fallback for anything
  the watcher missed, over the whole inbox every ``inbox_interval_s`` (default 10 min) and
  nightly. A file is identified by its sha256, so files already seen are skipped and a rerun
  writes nothing twice.
* ``ingest-simulation``, ``train-models``, ``predict``, ``attribute``, ``report``: run from the
  Prefect UI or ``prefect deployment run`` with parameters.

Scale-out is Prefect's and Celery's own: run ``clustermass serve`` once, and as many
``clustermass worker --queue gpu`` processes on GPU hosts as there are GPUs.
"""

from __future__ import annotations

import threading
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
from services.inbox_watch import heartbeat_loop, is_inbox_candidate, watch_folder
from services.settings import get_settings

__all__ = [
    "watch_inbox",
    "inbox_files",
    "build_deployments",
    "serve_all",
    "InboxWatcher",
    "start_inbox_watcher",
]


def inbox_files(inbox: Path) -> list[Path]:
    """Files in ``inbox`` (recursively) that look complete, sorted by name.

    Image files referenced by a YAML manifest are ingested through that manifest; a bare image
    is refused by the ingester with a message saying so (and recorded, so it is not retried).
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        return []
    return [p for p in sorted(inbox.rglob("*")) if p.is_file() and is_inbox_candidate(p, inbox)]


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


def _manifest_references(files: list[Path]) -> dict[Path, set[Path]]:
    """Files named inside each YAML manifest of the inbox (ingested through their manifest)."""
    import yaml

    references: dict[Path, set[Path]] = {}
    for path in files:
        if path.suffix.lower() not in (".yaml", ".yml"):
            continue
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        references[path.resolve()] = _paths_in(doc, path.parent)
    return references


@task(name="ingest-file", **transient_retries(5, 30, 120))
def ingest_file_task(path: str) -> dict[str, Any]:
    """Ingest one inbox file on a cpu worker (idempotent by checksum)."""
    return run_celery("clustermass.ingest_survey_file", path)


@flow(name="watch-inbox")
def watch_inbox(inbox: str | None = None, paths: list[str] | None = None) -> list[dict[str, Any]]:
    """Ingest every new file in the inbox directory; files already ingested are skipped.

    ``paths`` (the watcher's batch of new files) restricts the run to those files, plus the
    manifests of the inbox that name one of them (a catalogue copied after its YAML manifest
    goes in through the manifest then).
    """
    run_logger = get_run_logger()
    folder = Path(inbox) if inbox else get_settings().inbox_dir
    if folder is None:
        raise ValueError("no inbox: pass `inbox` or set CLUSTERMASS_INBOX_DIR")
    files = inbox_files(folder)
    references = _manifest_references(files)
    referenced = set().union(*references.values())
    todo = [f for f in files if f.resolve() not in referenced]
    if paths is not None:
        wanted = {Path(p).resolve() for p in paths}
        todo = [
            f for f in todo if f.resolve() in wanted or wanted & references.get(f.resolve(), set())
        ]
    run_logger.info(
        "%d file(s) in %s (%d through their manifests), %d to examine",
        len(files),
        folder,
        len(referenced),
        len(todo),
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


class InboxWatcher:
    """The inbox file watcher of ``clustermass serve``, in a background thread.

    At start it scans the whole inbox (``watch_inbox``), then runs ``watch_inbox`` on each
    batch of complete new files (:func:`services.inbox_watch.watch_folder`). With a
    ``heartbeat`` file, a second thread touches it while the watcher thread is alive.
    """

    def __init__(
        self,
        inbox: Path,
        *,
        settle_s: float,
        heartbeat: Path | None = None,
        scan_at_start: bool = True,
        tick_s: float = 0.5,
    ) -> None:
        self.inbox = Path(inbox)
        self.stop_event = threading.Event()
        self._scan_at_start = scan_at_start
        self._thread = threading.Thread(
            target=watch_folder,
            name="inbox-watcher",
            args=(self.inbox, self._ingest),
            kwargs={
                "settle_s": settle_s,
                "stop": self.stop_event,
                "on_start": self._start_scan,
                "tick_s": tick_s,
            },
            daemon=True,
        )
        self._heartbeat = (
            None
            if heartbeat is None
            else threading.Thread(
                target=heartbeat_loop,
                name="inbox-heartbeat",
                args=(heartbeat, self._thread.is_alive, self.stop_event),
                daemon=True,
            )
        )
        self.batches: list[list[dict[str, Any]]] = []  # each run's report rows

    def _start_scan(self) -> None:
        if self._scan_at_start:
            self.batches.append(watch_inbox(str(self.inbox)))

    def _ingest(self, files: list[Path]) -> None:
        self.batches.append(watch_inbox(str(self.inbox), [str(f) for f in files]))

    def start(self) -> InboxWatcher:
        """Start the watcher (and heartbeat) threads; return self."""
        if not self.inbox.is_dir():
            raise FileNotFoundError(f"inbox {self.inbox}: no such folder (CLUSTERMASS_INBOX_DIR)")
        self._thread.start()
        if self._heartbeat is not None:
            self._heartbeat.start()
        return self

    def is_alive(self) -> bool:
        """Whether the watcher thread runs."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both threads (an ingestion in progress finishes first, up to ``timeout``)."""
        self.stop_event.set()
        for thread in (self._thread, self._heartbeat):
            if thread is not None and thread.is_alive():
                thread.join(timeout)


def start_inbox_watcher(inbox: Path, **kwargs: Any) -> InboxWatcher:
    """Start an :class:`InboxWatcher` on ``inbox`` (settle time and heartbeat from settings)."""
    settings = get_settings()
    kwargs.setdefault("settle_s", settings.inbox_settle_s)
    kwargs.setdefault("heartbeat", settings.heartbeat_file)
    return InboxWatcher(inbox, **kwargs).start()


def serve_all(inbox: Path | None, *, watch: bool = True, **kwargs: Any) -> None:
    """Serve every deployment until interrupted (Prefect's own scheduler and runner).

    With an inbox and ``watch``, the inbox watcher runs beside them (scan at start-up, then new
    files within seconds); the scheduled scan stays as the fallback.
    """
    from prefect import serve

    deployments = build_deployments(inbox, **kwargs)
    watcher = start_inbox_watcher(inbox) if inbox is not None and watch else None
    try:
        serve(*deployments)
    finally:
        if watcher is not None:
            watcher.stop()
