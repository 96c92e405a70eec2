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


def _verify(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["db", "verify", *args])
    return result.exit_code, result.output


def test_db_verify_is_clean_after_two_mocks_in_one_folder(
    store_env: tuple[str, Path], tmp_path: Path
) -> None:
    """Acceptance (bug 1): `clustermass db verify` exits 0 after the reproducer."""
    _simulate(4, 11, tmp_path / "D")
    _simulate(6, 11, tmp_path / "D")
    code, out = _verify()
    assert code == 0, out
    # 4 + 6 clusters x 4 map kinds; identical map files of the two mocks share one stored file
    n_files = len({sha for _, _, sha in _product_files(store_env[0])})
    assert f"checked 40 products ({n_files} files)" in out and "ok: no problems" in out


def test_db_verify_names_a_corrupted_file_and_repair_restores_what_it_can(
    store_env: tuple[str, Path], tmp_path: Path
) -> None:
    """A corrupted, a missing and a hard-linked stored file: exit 1 naming each; `--repair`
    restores them from the mock files; a file with no intact source stays a problem."""
    from db.products import sha256_file

    url, store = store_env
    _simulate(4, 14, tmp_path / "mock")
    files = sorted({(p, sha) for _, p, sha in _product_files(url)})
    corrupted, missing, linked = (store / p for p, _ in files[:3])
    _corrupt(corrupted)
    missing.unlink()
    os.link(linked, tmp_path / "outside-link.fits")  # an older store's hard link

    code, out = _verify()
    assert code == 1, out
    assert f"sha256 mismatch: {corrupted}" in out
    assert f"missing: {missing}" in out
    assert f"shared inode: {linked}" in out
    assert "3 problems (missing 1, sha256 1, shared 1)" in out

    code, out = _verify("--repair")
    assert code == 0, out
    assert out.count("repaired: restored") == 3
    assert all(sha256_file(store / p) == sha for p, sha in files)
    assert os.stat(linked).st_nlink == 1
    assert _verify()[0] == 0

    # no intact copy anywhere: the source mock file is gone too
    source = tmp_path / "mock" / "maps" / f"{_cluster_of(url, files[0][0])}.fits"
    source.unlink()
    _corrupt(corrupted)
    code, out = _verify("--repair")
    assert code == 1, out
    assert f"could not repair {corrupted}" in out and f"sha256 mismatch: {corrupted}" in out


def _cluster_of(url: str, path: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(
                sa.text(
                    "SELECT c.external_id FROM products p JOIN clusters c ON c.id = p.cluster_id "
                    "WHERE p.path = :p LIMIT 1"
                ),
                {"p": path},
            )
    finally:
        engine.dispose()


def test_db_verify_reports_inconsistent_runs_and_orphan_products(
    store_env: tuple[str, Path],
) -> None:
    from db import products

    url, store = store_env
    orphan = products.store_bytes(store, b"weights of a deleted run", suffix=".pt", fmt="pt")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        run = conn.scalar(
            sa.text(
                "INSERT INTO model_runs (run_key, kind, config, seed, fold_scheme, status) "
                "VALUES ('k', 'single', '{}', 1, 'octant', 'done') RETURNING id"
            )
        )
        conn.execute(
            sa.text("INSERT INTO model_run_folds (run_id, fold, status) VALUES (:r, 0, 'done')"),
            {"r": run},
        )
        orphan_id = conn.scalar(
            sa.text(
                "INSERT INTO products (kind, path, sha256, format, shape, dtype, size_bytes) "
                "VALUES ('weights', :p, :s, 'pt', '{1}', 'torch', :n) RETURNING id"
            ),
            {"p": orphan.path, "s": orphan.sha256, "n": orphan.size_bytes},
        )
    engine.dispose()
    code, out = _verify()
    assert code == 1, out
    assert f"run {run} fold 0 is done but has no weights product" in out
    assert f"orphan product {orphan_id} (weights" in out
