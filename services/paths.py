"""Where things are on disk: the shared folder of real survey files, and the file store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine

from db import stores
from db.errors import ProductFileMissingError
from db.session import session_scope
from services.settings import Settings, get_settings, legacy_data_dir

__all__ = ["shared_data_dir", "explain_missing_products", "REPO_ROOT"]

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


@contextmanager
def explain_missing_products(engine: Engine, data_dir: Path) -> Iterator[None]:
    """Add to a missing product file error where this database's files were written.

    The database records the store roots its products were written to (table ``stores``); a
    missing file most often means this process looks in another store, so the error says
    which one to set (``CLUSTERMASS_DATA_DIR``) and to run ``clustermass db verify``.

    Raises
    ------
    db.errors.ProductFileMissingError
        Re-raised with the hint appended.
    """
    try:
        yield
    except ProductFileMissingError as exc:
        with session_scope(engine) as session:
            hint = stores.missing_store_hint(session, data_dir, also_look_in=[legacy_data_dir()])
        raise ProductFileMissingError(f"{exc}. {hint}") from exc
