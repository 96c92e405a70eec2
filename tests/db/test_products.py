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
