"""How the CLI runs Prefect flows: INFO logs to Prefect, a quiet terminal, the flow-run URL.

* Flow runs log at INFO to the Prefect API (flow, task and Celery task records:
  :mod:`services.prefect_logs`); the terminal shows WARNING and above, INFO with ``-v``
  (``cli.main``: the level of the terminal's handler, not of the loggers).
* With a Prefect API configured (``PREFECT_API_URL``; the UI address from ``PREFECT_UI_URL``,
  else derived from the API's), each flow run prints its UI address on stderr when it starts,
  so an operator can follow it. Without one (Prefect's temporary server) nothing is printed:
  that server is gone when the command ends.
"""

from __future__ import annotations

import logging
import os
from typing import Any, TypeVar

from cli import prefect_guard
from cli.commands._common import err_console, plain

__all__ = ["prepare", "announced", "flow_run_url", "LOG_LEVEL"]

#: The level flow runs log at to Prefect (the terminal is set separately, by ``-v``).
LOG_LEVEL = "INFO"

F = TypeVar("F")


def prepare() -> None:
    """Set up a command that runs flows; call it before Prefect is imported.

    Prefect logs at INFO (``PREFECT_LOGGING_LEVEL``, an explicit value wins) and Prefect's own
    console handler, if it installs one, shows only what ``-v`` asks for; the project's loggers
    forward to the flow run (:func:`services.prefect_logs.install`). Without a Prefect API the
    temporary server dies with this process (:mod:`cli.prefect_guard`).
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", LOG_LEVEL)
    # lazy: Celery loads only for the commands that run flows
    from services import prefect_logs

    prefect_logs.install(logging.getLevelName(os.environ["PREFECT_LOGGING_LEVEL"]))
    if not os.environ.get("PREFECT_API_URL"):
        prefect_guard.install()


def flow_run_url(flow_run: Any) -> str | None:
    """Return the UI address of ``flow_run``, or None without a configured Prefect API."""
    # lazy: Prefect loads only for the commands that run flows
    from prefect.settings import get_current_settings
    from prefect.utilities.urls import url_for

    if not get_current_settings().api.url:
        return None
    return url_for(flow_run)


def _print_url(flow: Any, flow_run: Any, state: Any) -> None:
    url = flow_run_url(flow_run)
    if url:
        err_console.print(plain(f"Prefect flow run {flow_run.name!r} ({flow.name}): {url}"))


def announced(flow: F) -> F:
    """``flow`` with a hook printing its run's UI address when it starts (API configured)."""
    hooks = [*getattr(flow, "on_running_hooks", []), _print_url]
    return flow.with_options(on_running=hooks)  # type: ignore[attr-defined]
