"""``clustermass worker``: a Celery worker for one queue (``cpu`` or ``gpu``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Literal

import typer

from cli.commands._common import cli_errors, terminal_logging
from services.settings import get_settings

__all__ = ["worker", "gpu_ids"]


class WorkerConfigError(RuntimeError):
    """The worker cannot start with the current settings."""


def gpu_ids() -> list[str]:
    """List the GPUs this host exposes, without initialising CUDA in this process.

    ``CUDA_VISIBLE_DEVICES`` wins when set; otherwise ``nvidia-smi -L`` is asked. CUDA must not
    be initialised before the prefork pool forks its children (a forked CUDA context is unusable).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v for v in visible.split(",") if v.strip() not in ("", "-1")]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


@cli_errors
def worker(
    queue: Literal["cpu", "gpu"] = typer.Option(..., "--queue", "-Q", help="Queue to consume"),
    concurrency: int | None = typer.Option(
        None, help="Worker processes (default: one per GPU for gpu, one per core for cpu)"
    ),
    pool: Literal["prefork", "solo", "threads"] = typer.Option("prefork", help="Celery pool"),
    loglevel: str = typer.Option("INFO", help="Log level"),
    hostname: str | None = typer.Option(None, help="Worker node name (default queue@host)"),
) -> None:
    """Start a Celery worker consuming QUEUE (needs CLUSTERMASS_BROKER_URL)."""
    settings = get_settings()
    if settings.celery_eager:
        raise WorkerConfigError(
            "no broker configured: set CLUSTERMASS_BROKER_URL (e.g. redis://127.0.0.1:6379/0) to "
            "run workers; without it tasks run in-process"
        )
    terminal_logging(loglevel)
    os.environ["CLUSTERMASS_WORKER_QUEUE"] = queue
    if queue == "gpu":
        ids = gpu_ids()
        if ids:
            os.environ["CLUSTERMASS_GPU_IDS"] = ",".join(ids)
        n = concurrency or max(1, len(ids))
    else:
        n = concurrency or (os.cpu_count() or 1)
    # lazy: start-up (torch/Prefect load only for the command that runs)
    from services.celery_app import get_celery

    argv = [
        "worker",
        f"--queues={queue}",
        f"--concurrency={n}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        f"--hostname={hostname or f'{queue}@%h'}",
        "--without-gossip",
        "--without-mingle",
    ]
    get_celery().worker_main(argv)
