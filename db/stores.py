"""The file stores a database's products were written to (table ``stores``).

Products hold paths relative to a store root (``CLUSTERMASS_DATA_DIR``). Every job that writes
products records the root it wrote to, so that a process pointed at another store (another
``HOME``, another machine, a changed setting) can be told where the files are.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.tables import Product, Store

__all__ = ["StoreRecord", "store_key", "record_store", "recorded_stores", "missing_store_hint"]


@dataclass(frozen=True)
class StoreRecord:
    """A store root this database's products were written to."""

    path: str
    host: str
    first_used_at: datetime
    last_used_at: datetime


def store_key(data_dir: Path) -> str:
    """Return the absolute, symlink-free path of a store root, as recorded."""
    return str(Path(data_dir).expanduser().resolve())


def record_store(session: Session, data_dir: Path) -> None:
    """Record that products are being written to the store at ``data_dir`` (an upsert)."""
    stmt = insert(Store).values(path=store_key(data_dir), host=socket.gethostname()[:255])
    stmt = stmt.on_conflict_do_update(
        index_elements=[Store.path],
        set_={"host": stmt.excluded.host, "last_used_at": func.now()},
    )
    session.execute(stmt)


def recorded_stores(session: Session) -> list[StoreRecord]:
    """Return every recorded store root, most recently written first."""
    rows = session.scalars(select(Store).order_by(Store.last_used_at.desc(), Store.path))
    return [StoreRecord(r.path, r.host, r.first_used_at, r.last_used_at) for r in rows]


def missing_store_hint(
    session: Session, data_dir: Path, *, also_look_in: list[Path] | None = None
) -> str:
    """Say where the files of this database probably are, and which setting to fix.

    Parameters
    ----------
    data_dir : Path
        The store the caller looked in.
    also_look_in : list of Path, optional
        Further candidate roots (e.g. an older default location), suggested when they exist.
    """
    here = store_key(data_dir)
    others = [r for r in recorded_stores(session) if r.path != here]
    n_products = session.scalar(select(func.count()).select_from(Product)) or 0
    lines = []
    if others:
        where = ", ".join(
            f"{r.path}{f' on {r.host}' if r.host else ''} (last written {r.last_used_at:%Y-%m-%d})"
            for r in others[:3]
        )
        lines.append(
            f"this database's {n_products} product files were written under {where}, not under "
            f"the store this process uses ({here}): set CLUSTERMASS_DATA_DIR={others[0].path} "
            "(or CLUSTERMASS_HOME to the folder holding both the database and the store)"
        )
    else:
        extra = [str(p) for p in also_look_in or [] if Path(p).is_dir() and store_key(p) != here]
        lines.append(
            f"the store this process uses is {here}"
            + (f"; files may be under {', '.join(extra)}" if extra else "")
            + ": set CLUSTERMASS_DATA_DIR to the store that holds this database's files"
        )
    lines.append("run `clustermass db verify` to list what is missing (`--repair` to restore it)")
    return "; ".join(lines)
