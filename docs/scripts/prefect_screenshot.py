"""Screenshot a Prefect flow run's page (task runs and logs) with headless Chromium.

Used for ``docs/img/prefect_fit.png`` (README, "Workers and the dashboard")::

    python docs/scripts/prefect_screenshot.py --ui http://127.0.0.1:4200 --flow-run <id>

It needs a Chromium binary (Debian: ``apt-get install chromium``; ``--chromium`` or
``$CHROMIUM`` name another) and nothing from PyPI: Chromium's own ``--screenshot`` mode, with
a virtual-time budget that lets the UI fetch the run, its task runs and its logs first. The
flow run is checked through the API before the browser starts, so a wrong id or address fails
with a clear message rather than a screenshot of an error page. A server on another port than
4200 must be started with ``PREFECT_UI_API_URL`` pointing at its own API, or its UI asks port
4200 for the data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium(explicit: str | None) -> str:
    """Return the Chromium executable: ``explicit``, ``$CHROMIUM``, else the first on PATH."""
    for name in (explicit, os.environ.get("CHROMIUM"), *CANDIDATES):
        if name and (path := shutil.which(name)):
            return path
    raise SystemExit(
        "no Chromium found: install it (Debian: apt-get install chromium) or pass --chromium"
    )


def check_flow_run(ui: str, api: str | None, flow_run: str) -> dict:
    """Read the flow run from the API (``<ui>/api`` unless ``api`` is given); exit if absent."""
    base = (api or f"{ui.rstrip('/')}/api").rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/flow_runs/{flow_run}", timeout=15) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"flow run {flow_run} not found at {base} (HTTP {exc.code})") from exc
    except OSError as exc:
        raise SystemExit(f"no Prefect API answers at {base}: {exc}") from exc


def screenshot(
    url: str, out: Path, chromium: str, *, width: int, height: int, budget_ms: int
) -> None:
    """Render ``url`` headless and write a PNG of the window to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prefect-shot-") as profile:
        cmd = [
            chromium,
            "--headless=new",
            "--no-sandbox",  # root in containers; the page is our own local UI
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={out.resolve()}",
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    """Command line: check the flow run, then screenshot its page."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ui", default="http://127.0.0.1:4200", help="Prefect UI address")
    ap.add_argument("--api", help="Prefect API address (default <ui>/api)")
    ap.add_argument("--flow-run", required=True, help="Flow run id (the CLI prints its URL)")
    ap.add_argument("--out", type=Path, default=Path("docs/img/prefect_fit.png"))
    ap.add_argument("--chromium", help="Chromium executable (default: found on PATH)")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1300, help="Tall enough for ~10 log lines")
    ap.add_argument(
        "--wait-ms",
        type=int,
        default=30000,
        help="Virtual time for the page to load [ms]; under ~30 s the run graph's time axis "
        "is caught mid-animation (overlapping labels)",
    )
    args = ap.parse_args(argv)
    run = check_flow_run(args.ui, args.api, args.flow_run)
    url = f"{args.ui.rstrip('/')}/runs/flow-run/{args.flow_run}"
    screenshot(
        url, args.out, find_chromium(args.chromium),
        width=args.width, height=args.height, budget_ms=args.wait_ms,
    )  # fmt: skip
    state = (run.get("state") or {}).get("type", "?")
    print(f"{args.out}: flow run {run.get('name')!r} ({state}) at {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
