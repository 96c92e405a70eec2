"""Helpers shared by CLI commands: one-line errors instead of tracebacks, consoles, ``plain``.

Every string that comes from data (file names, cluster and spec names, units, error messages
quoting them) and every header holding brackets (``bias [dex]``) reaches rich through
:func:`plain`: rich then renders it verbatim, never as markup (``[/]``, ``[link=...]``) nor as
an emoji code (``:x:``).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import InterfaceError, OperationalError

from db.session import scrub

__all__ = [
    "console",
    "err_console",
    "cli_errors",
    "is_user_error",
    "plain",
    "terminal_logging",
]

console = Console(soft_wrap=True, highlight=False, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False, emoji=False)


#: The terminal's log handler (stderr), installed by :func:`terminal_logging`.
TERMINAL_HANDLER = logging.StreamHandler()
TERMINAL_HANDLER.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


def terminal_logging(verbose: bool | str) -> None:
    """Log to the terminal at WARNING (INFO with ``-v``, or a level name): a handler level.

    Flow runs log at INFO to Prefect (``cli.prefect_runs``); those records also reach the root
    logger, so the terminal's handler, not the loggers, decides what is shown. Prefect's own
    console handler (installed only when no other handler is) gets the same level. Called again
    (``clustermass worker --loglevel``), it changes the level.
    """
    if isinstance(verbose, str):
        level = logging.getLevelName(verbose.upper())
        if not isinstance(level, int):
            raise ValueError(f"unknown log level {verbose!r}: use DEBUG, INFO, WARNING or ERROR")
    else:
        level = logging.INFO if verbose else logging.WARNING
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", logging.getLevelName(level))
    TERMINAL_HANDLER.setLevel(level)
    root = logging.getLogger()
    if TERMINAL_HANDLER in root.handlers:
        root.setLevel(level)
    else:
        logging.basicConfig(level=level, handlers=[TERMINAL_HANDLER])


def plain(value: object, style: str = "") -> Text:
    """``value`` as text that rich prints exactly: no markup, no emoji codes, no links.

    Use it for every string from data (and for headers with brackets) handed to
    ``console.print``, ``console.status`` or a ``Table`` (cells, headers, titles). Combine it
    with styled literals through ``Text.assemble(("error:", "bold red"), " ", plain(msg))``.

    Parameters
    ----------
    value
        Anything; ``str(value)`` is shown verbatim.
    style
        A rich style for the whole text (a literal of the program, never data).

    Returns
    -------
    rich.text.Text
        Text that is not parsed as console markup.
    """
    return Text(str(value), style=style)


P = ParamSpec("P")
R = TypeVar("R")

_OWN_PACKAGES = {"cli", "db", "mocks", "survey", "models", "flows", "services", "benchmarks"}


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error this project raises on purpose, with a message for the user.

    Those are the exception types defined in the project's packages (``db.errors``,
    ``mocks.errors``, ...), settings validation errors, missing input files and a database
    connection that fails or is lost mid-command (``OperationalError``, ``InterfaceError``).
    Anything else is a bug and keeps its traceback.
    """
    if isinstance(exc, ValidationError | FileNotFoundError | OperationalError | InterfaceError):
        return True
    return type(exc).__module__.split(".")[0] in _OWN_PACKAGES


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return "invalid settings: " + "; ".join(parts)
    if isinstance(exc, OperationalError | InterfaceError):
        orig = str(exc.orig or exc).strip().splitlines()
        reason = orig[0] if orig else type(exc).__name__
        return scrub(
            f"database connection failed or was lost: {reason}; the command stopped (its open "
            "transaction is rolled back by the server). Check the server and run it again.",
            "",
        )
    return str(exc).strip().replace("\n", " ")


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's own errors into one red line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except Exception as exc:
            if not is_user_error(exc):
                raise
            err_console.print(
                Text.assemble(("error:", "bold red"), " ", plain(_one_line(exc))),
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from exc

    return wrapper
