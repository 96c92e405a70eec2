"""Content-addressed file store for large arrays, and their ``products`` rows.

Files live at ``<data_dir>/<sha[:2]>/<sha><suffix>``, named by the sha256 of their bytes, so the
same content is stored once and a path is also a checksum. Writes are atomic (temporary file +
``os.replace``). ``npz`` files are written deterministically (fixed zip timestamps), so the same
arrays always give the same bytes and the same name.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.errors import ProductIntegrityError
from db.tables import Product

__all__ = [
    "StoredFile",
    "sha256_file",
    "store_bytes",
    "store_file",
    "store_arrays",
    "npz_bytes",
    "load_arrays",
    "resolve",
    "upsert_product",
    "upsert_products",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    """A file in the store: path relative to the data directory, checksum and size."""

    path: str
    sha256: str
    size_bytes: int
    format: str


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _relpath(sha: str, suffix: str) -> str:
    return f"{sha[:2]}/{sha}{suffix}"


def _atomic_write(dest: Path, payload: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_bytes(data_dir: Path, payload: bytes, *, suffix: str, fmt: str) -> StoredFile:
    """Store ``payload`` under its content hash (no-op if already present)."""
    sha = hashlib.sha256(payload).hexdigest()
    rel = _relpath(sha, suffix)
    dest = Path(data_dir) / rel
    if not (dest.exists() and dest.stat().st_size == len(payload)):
        _atomic_write(dest, payload)
    return StoredFile(rel, sha, len(payload), fmt)


def store_file(data_dir: Path, src: Path, *, fmt: str | None = None) -> StoredFile:
    """Copy the file ``src`` into the store under its content hash."""
    src = Path(src)
    sha = sha256_file(src)
    suffix = "".join(src.suffixes[-2:]) if src.suffix == ".gz" else src.suffix
    rel = _relpath(sha, suffix)
    dest = Path(data_dir) / rel
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        try:  # a hard link costs nothing on the same filesystem; else copy
            os.unlink(tmp)
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    if fmt is None:
        fmt = "fits" if ".fits" in suffix or ".fit" in suffix else "raw"
    return StoredFile(rel, sha, dest.stat().st_size, fmt)


def npz_bytes(arrays: Mapping[str, np.ndarray], *, compress: bool = True) -> bytes:
    """Serialise arrays to ``.npz`` bytes deterministically (fixed timestamps, sorted names)."""
    buf = io.BytesIO()
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=mode) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = mode
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arrays[name]), allow_pickle=False)
    return buf.getvalue()


def store_arrays(
    data_dir: Path, arrays: Mapping[str, np.ndarray], *, compress: bool = True
) -> StoredFile:
    """Store named arrays as a deterministic ``.npz`` under its content hash."""
    return store_bytes(data_dir, npz_bytes(arrays, compress=compress), suffix=".npz", fmt="npz")


def resolve(data_dir: Path, product: Product | StoredFile, *, verify: bool = False) -> Path:
    """Return the absolute path of a product's file, optionally checking its sha256.

    Raises
    ------
    ProductIntegrityError
        If the file is missing or (with ``verify``) its checksum differs from the record.
    """
    path = Path(data_dir) / product.path
    if not path.exists():
        raise ProductIntegrityError(
            f"product file {path} is missing (data directory {data_dir}); re-run the ingest that "
            "made it, or point CLUSTERMASS_DATA_DIR at the right store"
        )
    if verify and sha256_file(path) != product.sha256:
        raise ProductIntegrityError(
            f"product file {path} does not match its sha256 {product.sha256}"
        )
    return path


def load_arrays(
    data_dir: Path, product: Product | StoredFile, *, verify: bool = False
) -> dict[str, np.ndarray]:
    """Load all arrays of an ``npz`` product."""
    path = resolve(data_dir, product, verify=verify)
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def upsert_product(
    session: Session,
    *,
    stored: StoredFile,
    kind: str,
    shape: tuple[int, ...] | list[int],
    dtype: str,
    cluster_id: int | None = None,
    label: str = "",
    instrument: str = "",
    bands_kev: str = "",
    pixel_scale_mpc_h: float | None = None,
    meta: dict[str, Any] | None = None,
) -> int:
    """Insert or update the product row keyed by ``(cluster_id, kind, label)``; return its id.

    Products without a cluster (e.g. network weights) are keyed by ``(kind, sha256)``.
    """
    values = dict(
        cluster_id=cluster_id,
        kind=kind,
        label=label,
        instrument=instrument,
        bands_kev=bands_kev,
        path=stored.path,
        sha256=stored.sha256,
        format=stored.format,
        shape=[int(s) for s in shape],
        dtype=str(dtype),
        pixel_scale_mpc_h=pixel_scale_mpc_h,
        size_bytes=stored.size_bytes,
        meta=meta or {},
    )
    if cluster_id is None:
        existing = session.scalar(
            select(Product.id).where(
                Product.cluster_id.is_(None), Product.kind == kind, Product.sha256 == stored.sha256
            )
        )
        if existing is not None:
            return existing
        return session.scalar(insert(Product).values(**values).returning(Product.id))
    stmt = insert(Product).values(**values)
    update = {k: stmt.excluded[k] for k in values if k not in ("cluster_id", "kind", "label")}
    stmt = stmt.on_conflict_do_update(constraint="uq_products_cluster_id_kind_label", set_=update)
    return session.scalar(stmt.returning(Product.id))


def upsert_products(
    session: Session, rows: list[dict[str, Any]]
) -> dict[tuple[int, str, str], int]:
    """Bulk upsert of cluster products keyed by ``(cluster_id, kind, label)``.

    Each row holds :class:`db.tables.Product` column values, ``cluster_id`` included (not None).
    Returns ``(cluster_id, kind, label) -> id``.
    """
    ids: dict[tuple[int, str, str], int] = {}
    for start in range(0, len(rows), 1000):
        part = [{"label": "", "meta": {}, **r} for r in rows[start : start + 1000]]
        stmt = insert(Product).values(part)
        cols = set().union(*(r.keys() for r in part)) - {"cluster_id", "kind", "label"}
        stmt = stmt.on_conflict_do_update(
            constraint="uq_products_cluster_id_kind_label", set_={c: stmt.excluded[c] for c in cols}
        )
        ret = stmt.returning(Product.cluster_id, Product.kind, Product.label, Product.id)
        for cid, kind, label, pid in session.execute(ret):
            ids[(cid, kind, label)] = pid
    return ids
