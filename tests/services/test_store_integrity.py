"""Stored files stay what was ingested (issue 15, part B).

Bug 1: the store hard-linked mock map files, so writing a second mock into the same folder
rewrote the first catalogue's stored maps; training read them unchecked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import service_environment

pytestmark = pytest.mark.db


@pytest.fixture
def store_env(admin_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A private migrated database and a store under ``tmp_path/store``."""
    with service_environment(admin_url, tmp_path / "store", prefix="cmstore") as url:
        yield url, tmp_path / "store"


def _simulate(n: int, seed: int, out: Path) -> int:
    """What `clustermass simulate --n N --seed S --out OUT` runs: generate, then ingest."""
    from services.jobs.simulation import generate_mock, ingest_mock_directory

    generate_mock({"n_clusters": n, "seed": seed}, out)
    return ingest_mock_directory(out).catalogue_id


def _product_files(url: str) -> list[tuple[int, str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT c.catalogue_id, p.path, p.sha256 FROM products p "
                    "JOIN clusters c ON c.id = p.cluster_id ORDER BY p.id"
                )
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def _corrupt(path: Path) -> None:
    """Flip one byte in the middle of a (read-only) stored file, as a stray writer would."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_second_mock_in_the_same_folder_leaves_the_first_catalogue_intact(
    store_env: tuple[str, Path], tmp_path: Path
) -> None:
    """Bug 1: every stored file of both catalogues still matches products.sha256."""
    from db.products import sha256_file

    url, store = store_env
    first = _simulate(4, 11, tmp_path / "D")
    second = _simulate(6, 11, tmp_path / "D")  # rewrites D/maps/*.fits in place
    rows = _product_files(url)
    assert {cat for cat, _, _ in rows} == {first, second}
    bad = [path for _, path, sha in rows if sha256_file(store / path) != sha]
    assert bad == [], f"{len(bad)} stored files no longer match their sha256: {bad[:3]}"


def test_training_inputs_are_verified_against_their_sha256(
    store_env: tuple[str, Path], tmp_path: Path
) -> None:
    """A stored map whose bytes changed is refused, naming the file, the cluster and the fix."""
    from db.errors import ProductIntegrityError
    from services.database import ready_engine
    from services.jobs.data import load_catalogue_data

    url, store = store_env
    cat = _simulate(4, 12, tmp_path / "mock")
    engine = ready_engine()
    assert len(load_catalogue_data(engine, cat, store, use_cache=False).cluster_ids) == 4
    path = store / _product_files(url)[0][1]
    _corrupt(path)
    with pytest.raises(ProductIntegrityError) as err:
        load_catalogue_data(engine, cat, store, use_cache=False)
    msg = str(err.value)
    assert str(path) in msg and "does not match its sha256" in msg
    assert "cluster" in msg and "catalogue" in msg
    assert "clustermass db verify --repair" in msg


def test_a_missing_file_error_names_the_store_the_database_wrote_to(
    store_env: tuple[str, Path], tmp_path: Path
) -> None:
    """Bug 2: rows whose files are not in this store say where they were written, what to set."""
    from db.errors import ProductIntegrityError
    from services.database import ready_engine
    from services.jobs.data import load_catalogue_data

    _, store = store_env
    cat = _simulate(4, 13, tmp_path / "mock")
    elsewhere = tmp_path / "other-home" / "data"
    with pytest.raises(ProductIntegrityError) as err:
        load_catalogue_data(ready_engine(), cat, elsewhere, use_cache=False)
    msg = str(err.value)
    assert "is missing" in msg and str(elsewhere) in msg
    assert f"CLUSTERMASS_DATA_DIR={store.resolve()}" in msg
    assert "clustermass db verify" in msg
