"""Console-script entry point: set the process up, then run the ``clustermass`` app.

glibc reads its malloc tunables only at start-up, so the allocator settings of
:mod:`astro.allocator` are applied by re-executing the same command line once, before the app
(and torch) is imported; the child runs :func:`cli.main.main`.
"""

from __future__ import annotations

from astro.allocator import reexec_with_tuned_malloc


def main() -> None:
    """``clustermass``: re-execute with the tuned allocator if needed, then run the app."""
    reexec_with_tuned_malloc()
    # lazy: the app (and torch) loads once, after the re-exec
    from cli.main import main as run_app

    run_app()
