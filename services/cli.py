"""The ``clustermass`` command line (typer). Commands parse input and call library functions."""

from __future__ import annotations

import logging
import os

import typer

from services.commands import dbcmd, train

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    name="clustermass",
    help="Galaxy-cluster masses from X-ray maps with deep learning (Ho et al. 2023).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(dbcmd.app, name="db")
app.command("train")(train.train)
app.command("benchmark")(train.benchmark)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
