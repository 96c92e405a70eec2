"""Content-addressed file store for large arrays, and their ``products`` rows.

Files live at ``<data_dir>/<sha[:2]>/<sha><suffix>``, named by the sha256 of their bytes, so the
same content is stored once and a path is also a checksum. Writes are atomic (temporary file +
``os.replace``). ``npz`` files are written deterministically (fixed zip timestamps), so the same
arrays always give the same bytes and the same name.

The store owns its files: :func:`store_file` copies (or reflinks, where the filesystem can) a
source file, never hard-links it, so rewriting the source in place cannot change a stored file;
stored files are read-only (mode 0444) and never share an inode with another name
(``st_nlink == 1``). Readers check the sha256 with ``verify=True`` (:func:`verify_file`).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import mmap
import os
import tempfile
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.errors import ProductFileMissingError, ProductIntegrityError
from db.ingest import copy_upsert
from db.tables import Product

__all__ = [
    "StoredFile",
    "STORED_MODE",
    "sha256_file",
    "is_owned",
    "verify_file",
    "restore_copy",
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
STORED_MODE = 0o444  # stored files are read-only: nothing in the project rewrites them
_FICLONE = 0x40049409  # Linux ioctl: share the source's extents copy-on-write (btrfs, XFS)


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


def _suffix(src: Path) -> str:
    return "".join(src.suffixes[-2:]) if src.suffix == ".gz" else src.suffix


def is_owned(path: Path, size: int | None = None) -> bool:
    """Whether ``path`` is a stored file the store alone owns.

    That is: a regular file (not a symlink), with one name only (``st_nlink == 1``: no hard link
    shares its inode, so nothing outside the store can rewrite it) and, when ``size`` is given,
    of that size.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return (
        (st.st_mode & 0o170000) == 0o100000
        and st.st_nlink == 1
        and (size is None or st.st_size == size)
    )


def _tmp_in(folder: Path) -> Path:
    # folders are created only when missing (a mkdir per file costs as much as hashing it)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    os.close(fd)
    return Path(tmp)


def _install(tmp: Path, dest: Path) -> None:
    """Make ``tmp`` read-only and move it to ``dest`` atomically (replacing what is there)."""
    os.chmod(tmp, STORED_MODE)
    try:
        os.replace(tmp, dest)
    except FileNotFoundError:  # dest's folder is new (tmp itself exists: it was just written)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)


def _atomic_write(dest: Path, payload: bytes) -> None:
    tmp = _tmp_in(dest.parent)
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
        _install(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reflink(src_fd: int, dest_fd: int) -> bool:
    """Clone ``src_fd`` into ``dest_fd`` copy-on-write; False where the filesystem cannot."""
    try:
        fcntl.ioctl(dest_fd, _FICLONE, src_fd)
    except OSError:
        return False
    return True


# Devices (st_dev of the destination) where a reflink failed: not tried again in this process
# (ext4, tmpfs: one failing ioctl and its exception per stored file otherwise).
_NO_REFLINK: set[int] = set()
_NO_REFLINK_LOCK = threading.Lock()
# copy_file_range errors that mean "not here" (old kernels, cross-device, some filesystems)
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


def _kernel_copy(src_fd: int, dest_fd: int) -> bool:
    """Copy all of ``src_fd`` to ``dest_fd`` inside the kernel; False where it cannot.

    ``copy_file_range``: no pass through Python's buffers. On False nothing was written.
    """
    copied = 0
    try:
        while n := os.copy_file_range(src_fd, dest_fd, 1 << 30):
            copied += n
    except OSError as exc:
        if copied or exc.errno not in _NO_KERNEL_COPY:
            raise
        return False
    return True


def _sha256_of_file(path: Path) -> tuple[str, int]:
    """Return the sha256 and size of a file's bytes.

    Hashed in one call over a read-only mapping: the GIL is released for the whole file and
    nothing is copied into Python.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return hashlib.sha256().hexdigest(), 0
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return hashlib.sha256(mapped).hexdigest(), size


def _copy_hashing(src: Path, dest: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dest`` (its own inode: a reflink or a byte copy); return sha256, size.

    The checksum is of the bytes written to ``dest`` (read back from the page cache), so the name
    a file gets in the store always matches its stored content, even if ``src`` changes
    meanwhile. The copy is a reflink where the filesystem clones, else ``copy_file_range``, else
    a read/write loop.
    """
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        dev = os.fstat(fout.fileno()).st_dev
        if dev not in _NO_REFLINK:
            if _reflink(fin.fileno(), fout.fileno()):
                fout.close()
                return _sha256_of_file(dest)
            with _NO_REFLINK_LOCK:
                _NO_REFLINK.add(dev)
        if not _kernel_copy(fin.fileno(), fout.fileno()):
            h = hashlib.sha256()
            size = 0
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
            return h.hexdigest(), size
    return _sha256_of_file(dest)


def restore_copy(src: Path, dest: Path, sha256: str) -> None:
    """Replace ``dest`` by a read-only copy of ``src`` whose bytes must hash to ``sha256``.

    Raises
    ------
    ProductIntegrityError
        ``src`` does not have that checksum (``dest`` is left as it was).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_in(dest.parent)
    try:
        sha, _ = _copy_hashing(Path(src), tmp)
        if sha != sha256:
            raise ProductIntegrityError(f"{src} has sha256 {sha}, not {sha256}")
        _install(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def store_bytes(data_dir: Path, payload: bytes, *, suffix: str, fmt: str) -> StoredFile:
    """Store ``payload`` under its content hash (no-op if the store already owns that file)."""
    sha = hashlib.sha256(payload).hexdigest()
    rel = _relpath(sha, suffix)
    dest = Path(data_dir) / rel
    if not is_owned(dest, len(payload)):
        _atomic_write(dest, payload)
    return StoredFile(rel, sha, len(payload), fmt)


def store_file(
    data_dir: Path, src: Path, *, fmt: str | None = None, expected_sha256: str | None = None
) -> StoredFile:
    """Copy the file ``src`` into the store under its content hash.

    The store gets its own copy (a reflink where the filesystem supports it, else a byte copy;
    never a hard link), read-only, so rewriting ``src`` later cannot change the stored file.

    Parameters
    ----------
    data_dir : Path
        Root of the store.
    src : Path
        The file to store; ``.fits.gz``-style double suffixes are kept.
    fmt : str, optional
        Product format; default ``fits`` for FITS suffixes, else ``raw``.
    expected_sha256 : str, optional
        The checksum ``src`` should have (e.g. from a manifest). When the store already owns a
        file of that checksum and ``src``'s size, ``src`` is not read at all; otherwise the copy
        is checked against it.

    Raises
    ------
    ProductIntegrityError
        ``src`` does not match ``expected_sha256``.
    """
    src = Path(src)
    suffix = _suffix(src)
    if fmt is None:
        fmt = "fits" if ".fits" in suffix or ".fit" in suffix else "raw"
    if expected_sha256 is not None:
        rel = _relpath(expected_sha256, suffix)
        size = src.stat().st_size
        if is_owned(Path(data_dir) / rel, size):
            return StoredFile(rel, expected_sha256, size, fmt)
    # the copy goes to a temporary file in the store's own folder tree (same filesystem, so the
    # final os.replace is atomic); its name is known only once its bytes are hashed
    tmp = _tmp_in(Path(data_dir))
    try:
        sha, size = _copy_hashing(src, tmp)
        if expected_sha256 is not None and sha != expected_sha256:
            raise ProductIntegrityError(
                f"{src} does not match its recorded sha256 {expected_sha256} (it has {sha}); "
                "the file changed after it was written: regenerate it, or restore the original"
            )
        rel = _relpath(sha, suffix)
        dest = Path(data_dir) / rel
        if is_owned(dest, size):
            tmp.unlink()
        else:
            _install(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StoredFile(rel, sha, size, fmt)


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


def _describe(product: Product | StoredFile) -> str:
    if isinstance(product, Product):
        owner = (
            f"cluster id {product.cluster_id}" if product.cluster_id is not None else "no cluster"
        )
        return f"product {product.id} ({product.kind}, {owner})"
    return "stored file"


def verify_file(path: Path, sha256: str, *, what: str = "stored file") -> None:
    """Check that the file ``path`` has the checksum ``sha256`` (hashing all of its bytes).

    No result is cached: hashing costs about half of parsing the file (0.14 s for the 184 MB of
    maps of 300 mock clusters, against 0.25 s to read them), and callers cache what they load.

    Raises
    ------
    ProductIntegrityError
        The file's sha256 differs; the message names the file, ``what`` it is, and the fix.
    """
    actual = sha256_file(path)
    if actual != sha256:
        raise ProductIntegrityError(
            f"product file {path} ({what}) does not match its sha256 {sha256} (it has {actual}): "
            "the stored file was changed; run `clustermass db verify --repair` to restore it "
            "from its source, or re-run the ingest that made it"
        )


def resolve(
    data_dir: Path,
    product: Product | StoredFile,
    *,
    verify: bool = False,
    what: str | None = None,
) -> Path:
    """Return the absolute path of a product's file, optionally checking its sha256.

    Parameters
    ----------
    what : str, optional
        What the file is, for error messages (e.g. ``"map of cluster 12 in catalogue 'x'"``).

    Raises
    ------
    ProductFileMissingError
        If the file is missing.
    ProductIntegrityError
        If (with ``verify``) its checksum differs from the record.
    """
    what = what or _describe(product)
    path = Path(data_dir) / product.path
    if not path.exists():
        raise ProductFileMissingError(
            f"product file {path} ({what}) is missing (data directory {data_dir}); re-run the "
            "ingest that made it, point CLUSTERMASS_DATA_DIR at the right store, or run "
            "`clustermass db verify`"
        )
    if verify:
        verify_file(path, product.sha256, what=what)
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
    session: Session, rows: list[dict[str, Any]], *, new: bool = False
) -> dict[tuple[int, str, str], int]:
    """Bulk upsert of cluster products keyed by ``(cluster_id, kind, label)`` (through COPY).

    Each row holds :class:`db.tables.Product` column values, ``cluster_id`` included (not None).
    ``new``: every row belongs to a cluster this transaction inserted (a plain insert, see
    :func:`db.ingest.copy_upsert`). Returns ``(cluster_id, kind, label) -> id``.
    """
    if not rows:
        return {}
    defaults: dict[str, Any] = {"label": "", "meta": {}}
    columns = list(dict.fromkeys(["cluster_id", "kind", "label", "meta", *rows[0]]))
    for r in rows[1:]:
        columns += [c for c in r if c not in columns]
    written = copy_upsert(
        session,
        "products",
        columns,
        ((*(r.get(c, defaults.get(c)) for c in columns),) for r in rows),
        key=("cluster_id", "kind", "label"),
        returning=("cluster_id", "kind", "label", "id"),
        new=new,
    )
    return {(cid, kind, label): pid for cid, kind, label, pid, _ in written}
