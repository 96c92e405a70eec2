"""The content-addressed store: deterministic, deduplicating, verifiable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db import products, tables
from db.errors import ProductIntegrityError


def test_npz_is_deterministic_and_named_by_content(tmp_path: Path) -> None:
    arrays = {"counts": np.arange(12, dtype=np.int32).reshape(3, 4), "z": np.float64(0.1)}
    a = products.store_arrays(tmp_path, arrays)
    b = products.store_arrays(tmp_path / "other", arrays)
    assert a.sha256 == b.sha256
    payload = (tmp_path / a.path).read_bytes()
    assert hashlib.sha256(payload).hexdigest() == a.sha256
    assert a.path == f"{a.sha256[:2]}/{a.sha256}.npz"
    back = products.load_arrays(tmp_path, a, verify=True)
    np.testing.assert_array_equal(back["counts"], arrays["counts"])


def test_changed_content_changes_name(tmp_path: Path) -> None:
    a = products.store_arrays(tmp_path, {"x": np.zeros(4)})
    b = products.store_arrays(tmp_path, {"x": np.ones(4)})
    assert a.path != b.path


def test_corrupt_or_missing_file_is_reported(tmp_path: Path) -> None:
    stored = products.store_arrays(tmp_path, {"x": np.zeros(4)})
    (tmp_path / stored.path).write_bytes(b"garbage")
    with pytest.raises(ProductIntegrityError, match="does not match"):
        products.resolve(tmp_path, stored, verify=True)
    (tmp_path / stored.path).unlink()
    with pytest.raises(ProductIntegrityError, match="missing"):
        products.resolve(tmp_path, stored)


def test_store_file_keeps_bytes(tmp_path: Path) -> None:
    src = tmp_path / "img.fits.gz"
    src.write_bytes(b"\x1f\x8b fake gz bytes")
    stored = products.store_file(tmp_path / "store", src)
    assert stored.path.endswith(".fits.gz")
    assert (tmp_path / "store" / stored.path).read_bytes() == src.read_bytes()


def test_upsert_product_is_idempotent(session: Session, tmp_path: Path) -> None:
    cat = tables.Catalogue(name="p", kind="simulation", cosmology={})
    session.add(cat)
    session.flush()
    cl = tables.Cluster(catalogue_id=cat.id, external_id="1", redshift=0.1)
    session.add(cl)
    session.flush()
    arr = np.zeros((3, 8, 8), dtype=np.int32)
    stored = products.store_arrays(tmp_path, {"counts": arr})
    ids = {
        products.upsert_product(
            session,
            stored=stored,
            kind="xray_total",
            shape=arr.shape,
            dtype=arr.dtype.str,
            cluster_id=cl.id,
        )
        for _ in range(3)
    }
    assert len(ids) == 1
    weights = {
        products.upsert_product(session, stored=stored, kind="weights", shape=[1], dtype="f4")
        for _ in range(2)
    }
    assert len(weights) == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(tables.Product)) == 2


def test_rewriting_the_source_never_changes_the_stored_file(tmp_path: Path) -> None:
    """Bug 1 (issue 15): the store owns its copy; a source rewritten in place leaves it intact."""
    import os
    import stat

    src = tmp_path / "mock" / "maps" / "1.fits"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"first catalogue map " * 100)
    stored = products.store_file(tmp_path / "store", src)
    dest = tmp_path / "store" / stored.path
    # the mock generator rewrites its files in place (open "wb"), as a second simulate run does
    with open(src, "wb") as fh:
        fh.write(b"second catalogue map " * 100)
    assert products.sha256_file(dest) == stored.sha256
    st = os.stat(dest)
    assert st.st_nlink == 1, "the stored file shares its inode with another name"
    assert st.st_ino != os.stat(src).st_ino
    assert stat.S_IMODE(st.st_mode) == products.STORED_MODE  # read-only
    products.resolve(tmp_path / "store", stored, verify=True)


def test_store_bytes_files_are_read_only_and_replace_a_shared_inode(tmp_path: Path) -> None:
    import os
    import stat

    payload = b"weights"
    first = products.store_bytes(tmp_path, payload, suffix=".pt", fmt="pt")
    dest = tmp_path / first.path
    assert stat.S_IMODE(os.stat(dest).st_mode) == products.STORED_MODE
    # a store written by an older version: the file is a hard link to a file outside the store
    dest.unlink()
    outside = tmp_path / "outside.pt"
    outside.write_bytes(payload)
    os.link(outside, dest)
    products.store_bytes(tmp_path, payload, suffix=".pt", fmt="pt")
    assert os.stat(dest).st_nlink == 1 and os.stat(dest).st_ino != os.stat(outside).st_ino
    assert products.is_owned(dest, len(payload))


def test_store_file_checks_the_expected_checksum(tmp_path: Path) -> None:
    src = tmp_path / "1.fits"
    src.write_bytes(b"map bytes")
    good = hashlib.sha256(b"map bytes").hexdigest()
    stored = products.store_file(tmp_path / "store", src, expected_sha256=good)
    assert stored.sha256 == good and stored.format == "fits"
    with pytest.raises(ProductIntegrityError, match=r"1\.fits does not match its recorded sha256"):
        products.store_file(tmp_path / "store2", src, expected_sha256="0" * 64)
    assert not list((tmp_path / "store2").rglob("*.fits"))  # nothing half-stored


def test_store_file_reflink_path_names_the_copy_by_its_own_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the filesystem clones (btrfs, XFS), the stored name is the clone's checksum."""
    import shutil

    def fake_reflink(src_fd: int, dest_fd: int) -> bool:
        with open(src_fd, "rb", closefd=False) as fin, open(dest_fd, "wb", closefd=False) as fout:
            shutil.copyfileobj(fin, fout)
        return True

    monkeypatch.setattr(products, "_reflink", fake_reflink)
    monkeypatch.setattr(products, "_NO_REFLINK", set())  # earlier tests found no reflink here
    src = tmp_path / "img.fits"
    src.write_bytes(b"cloned bytes")
    stored = products.store_file(tmp_path / "store", src)
    assert stored.sha256 == hashlib.sha256(b"cloned bytes").hexdigest()
    assert stored.size_bytes == len(b"cloned bytes")
    assert (tmp_path / "store" / stored.path).read_bytes() == b"cloned bytes"


def test_store_file_tries_a_reflink_once_per_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the filesystem cannot clone (ext4, tmpfs), the failed ioctl is not repeated."""
    calls = []

    def no_reflink(src_fd: int, dest_fd: int) -> bool:
        calls.append(src_fd)
        return False

    monkeypatch.setattr(products, "_reflink", no_reflink)
    monkeypatch.setattr(products, "_NO_REFLINK", set())
    for k in range(3):
        src = tmp_path / f"{k}.fits"
        src.write_bytes(b"bytes %d" % k)
        stored = products.store_file(tmp_path / "store", src)
        assert stored.sha256 == hashlib.sha256(b"bytes %d" % k).hexdigest()
        assert (tmp_path / "store" / stored.path).read_bytes() == b"bytes %d" % k
    assert len(calls) == 1


@pytest.mark.parametrize("size", [0, 1, 3 * (1 << 20) + 17])
def test_store_file_without_kernel_copy_falls_back_to_a_byte_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    import errno
    import os

    def unsupported(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    payload = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    src = tmp_path / "big.fits"
    src.write_bytes(payload)
    for patched in (False, True):
        if patched:
            monkeypatch.setattr(os, "copy_file_range", unsupported)
        stored = products.store_file(tmp_path / f"store{patched}", src)
        assert stored.sha256 == hashlib.sha256(payload).hexdigest()
        assert stored.size_bytes == size
        assert (tmp_path / f"store{patched}" / stored.path).read_bytes() == payload


def test_a_kernel_copy_failing_midway_is_an_error_not_a_short_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    real = os.copy_file_range
    state = {"calls": 0}

    def fails_second_time(src: int, dst: int, count: int) -> int:
        state["calls"] += 1
        if state["calls"] > 1:
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst, 5)

    monkeypatch.setattr(os, "copy_file_range", fails_second_time)
    src = tmp_path / "x.fits"
    src.write_bytes(b"0123456789")
    with pytest.raises(OSError, match="I/O error"):
        products.store_file(tmp_path / "store", src)
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file()]  # no partial file
