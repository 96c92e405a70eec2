"""Where things are on disk: the shared folder of real survey files."""

from __future__ import annotations

from pathlib import Path

from services.settings import Settings, get_settings

__all__ = ["shared_data_dir", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[1]
_FALLBACK = Path("/work/shared/data")


def shared_data_dir(settings: Settings | None = None) -> Path | None:
    """Return the folder of real survey files (``catalogues/``, ``images/``), or None.

    In order: ``CLUSTERMASS_SHARED_DATA_DIR`` (``settings.shared_data_dir``), ``../shared/data``
    next to the checkout, ``/work/shared/data``; None when none of them exists.
    """
    settings = settings or get_settings()
    candidates = [settings.shared_data_dir, REPO_ROOT.parent / "shared" / "data", _FALLBACK]
    for c in candidates:
        if c is not None and Path(c).is_dir():
            return Path(c)
    return None
