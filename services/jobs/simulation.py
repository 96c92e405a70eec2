"""Jobs for simulated clusters: generate a mock catalogue, ingest it into the database.

A mock directory (see :mod:`mocks`) holds ``manifest.json``, ``truth.ecsv`` and one FITS file per
cluster under ``maps/`` with HDUs ``TOTAL``, ``AGN``, ``ICM`` (counts, bands on axis 0) and
``GALAXIES``. Ingestion writes one ``catalogues`` row, one ``clusters`` row per cluster (truth
mass, box position, snapshot), one ``observables`` row per scalar column, and ``products`` rows
for the map file (copied into the store once, under its sha256, and checked against the
manifest's checksum; referenced by the four products with the HDU name in ``meta``). Everything is an upsert on natural keys: running it twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import QTable
from sqlalchemy.orm import Session

from db import ingest, products, stores
from db.session import session_scope
from mocks import MockConfig, generate, read_catalogue
from services.database import ready_engine
from services.settings import Settings, get_settings

__all__ = [
    "IngestSummary",
    "generate_mock",
    "ingest_mock_directory",
    "catalogue_name_for",
    "store_mock_maps",
]

log = logging.getLogger(__name__)

MAP_HDUS = {"xray_total": "TOTAL", "xray_agn": "AGN", "xray_icm": "ICM", "galaxies": "GALAXIES"}
BANDS_KEV = "0.5-1.2,1.2-2.0,2.0-7.0"
INSTRUMENT = "eROSITA (mock)"
# Truth-table columns that map onto `clusters` columns rather than observables.
CLUSTER_COLUMNS = {
    "cluster_id",
    "snapshot",
    "redshift",
    "pos_x",
    "pos_y",
    "pos_z",
    "log10_m500c",
    "m500c",
    "r500c",
}


class MockDirectoryError(ValueError):
    """A mock directory is incomplete or inconsistent."""


@dataclass(frozen=True)
class IngestSummary:
    """What an ingestion wrote (row counts after the run)."""

    catalogue_id: int
    catalogue_name: str
    n_clusters: int
    n_observables: int
    n_products: int

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as a plain dict."""
        return asdict(self)


def catalogue_name_for(manifest: dict[str, Any]) -> str:
    """Name a mock catalogue by its seed, size and a hash of its full configuration."""
    config = manifest.get("config", {})
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    return f"mock-s{config.get('seed', manifest.get('seed'))}-n{manifest.get('n_clusters', len(manifest.get('files', {})))}-{digest}"


def generate_mock(
    config: dict[str, Any],
    out_dir: Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate a mock catalogue from a config mapping and write it to ``out_dir``.

    Idempotent: a directory whose manifest already holds the same configuration is reused.
    """
    cfg = MockConfig.from_preset(str(config.get("preset", "erass")), **config)
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.json"
    if manifest.exists():
        existing = json.loads(manifest.read_text())
        if existing.get("config") == json.loads(cfg.model_dump_json()):
            log.info("mock in %s already matches the configuration; reusing it", out_dir)
            return out_dir
    log.info(
        "generating a mock of %d clusters (seed %s) into %s", cfg.n_clusters, cfg.seed, out_dir
    )
    cat = generate(cfg, progress=progress)
    cat.write(out_dir)
    return out_dir


def _values(col: Any) -> np.ndarray:
    """Plain numbers of a (Q)Table column, without units."""
    return np.asarray(getattr(col, "value", col))


def _cluster_rows(truth: QTable) -> list[dict[str, Any]]:
    cols = {name: _values(truth[name]) for name in CLUSTER_COLUMNS if name in truth.colnames}
    return [
        {
            "external_id": str(cols["cluster_id"][i]),
            "name": str(cols["cluster_id"][i]),
            "snapshot": int(cols["snapshot"][i]),
            "redshift": float(cols["redshift"][i]),
            "pos_x_mpc_h": float(cols["pos_x"][i]),
            "pos_y_mpc_h": float(cols["pos_y"][i]),
            "pos_z_mpc_h": float(cols["pos_z"][i]),
            "log10_m500c": float(cols["log10_m500c"][i]),
            "r500c_mpc_h": float(cols["r500c"][i]),
            "mass_note": "mock truth: M500c of the generated halo [h^-1 Msun]",
        }
        for i in range(len(truth))
    ]


def _observable_columns(truth: QTable) -> list[str]:
    """Scalar numeric truth columns that are not cluster columns: the observables."""
    names = []
    for name in truth.colnames:
        if name in CLUSTER_COLUMNS:
            continue
        values = _values(truth[name])
        if values.dtype.kind in "biuf" and values.ndim == 1:
            names.append(name)
    return names


def _unit_string(col: Any) -> str:
    unit = getattr(col, "unit", None)
    return "" if unit is None else unit.to_string()


def read_mock_directory(mock_dir: Path) -> tuple[dict[str, Any], QTable]:
    """Read and check a mock directory's manifest and truth table (maps are not loaded)."""
    mock_dir = Path(mock_dir)
    cat = read_catalogue(mock_dir, load_maps=False, verify=False)
    manifest = json.loads((mock_dir / "manifest.json").read_text())
    for cid in cat.truth["cluster_id"]:
        path = mock_dir / "maps" / f"{cid}.fits"
        if not path.exists():
            raise MockDirectoryError(f"map file {path} for cluster {cid} is missing")
    return manifest, cat.truth


# Threads that copy and hash map files into the store during an ingest. Measured alone on the
# quiet 2-core development machine (3,300 files, 2.0 GB, ext4): one thread with the former
# read/write loop 8.7 s, two threads with the kernel copy 5.0 s. Writing 2 GB of new files is
# the floor there (~8 s of system time in one thread: page-cache and ext4 block allocation).
STORE_THREADS = 2


def ingest_mock_directory(
    mock_dir: Path,
    *,
    catalogue_name: str | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest a mock directory into the database and the file store (one transaction).

    Parameters
    ----------
    mock_dir : Path
        Directory written by :meth:`mocks.MockCatalogue.write`.
    catalogue_name : str, optional
        Natural key of the catalogue; default from the seed, size and config hash.
    progress : callable, optional
        ``progress(done, total)`` after each cluster's map is in the store (called from the
        storing threads, one call at a time).

    Raises
    ------
    MockDirectoryError
        A map file listed by the truth table is missing.
    db.errors.ProductIntegrityError
        A map file does not match the checksum its manifest records (it changed after the mock
        was written).
    """
    settings = settings or get_settings()
    manifest, truth = read_mock_directory(mock_dir)
    name = catalogue_name or catalogue_name_for(manifest)
    config = manifest.get("config", {})
    engine = ready_engine(settings)

    # The store copies each map (never links it: rewriting the mock later must not change what
    # was ingested); the manifest's checksums let a re-run skip files the store already owns.
    # Copying and hashing run in threads while the catalogue, clusters and observables are
    # written (hashlib and file I/O release the GIL); the products need the checksums and wait.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cm-store") as pool:
        stop = threading.Event()
        stored_future = pool.submit(
            store_mock_maps,
            settings.data_dir,
            Path(mock_dir),
            [str(c) for c in truth["cluster_id"]],
            manifest,
            progress,
            stop,
        )
        try:
            with session_scope(engine) as session:
                cat_id, cluster_ids, new_ids, n_obs = _write_catalogue(
                    session, name, truth, manifest, config, Path(mock_dir), settings.data_dir
                )
                stored = stored_future.result()
                rows = _product_rows(cluster_ids, stored)
                n_prod = 0
                for fresh in (True, False):  # a new cluster's products are plain inserts
                    part = [r for r in rows if (r["cluster_id"] in new_ids) == fresh]
                    n_prod += len(products.upsert_products(session, part, new=fresh))
        finally:
            stop.set()  # a failed transaction stops the copying early
    log.info(
        "ingested %s into catalogue %r (id %s): %d clusters, %d observables, %d products",
        mock_dir, name, cat_id, len(cluster_ids), n_obs, n_prod,
    )  # fmt: skip
    return IngestSummary(cat_id, name, len(cluster_ids), n_obs, n_prod)


def store_mock_maps(
    data_dir: Path,
    mock_dir: Path,
    cluster_ids: Sequence[str],
    manifest: dict[str, Any],
    progress: Callable[[int, int], None] | None,
    stop: threading.Event,
) -> list[products.StoredFile]:
    """Copy the map file of every cluster id into the store; return them in that order.

    ``STORE_THREADS`` threads copy and hash files side by side (the kernel copy and the hashing
    release the GIL); ``progress(done, total)`` is called from them, one call at a time.
    """
    sums = manifest.get("files", {})
    ids = list(cluster_ids)
    lock = threading.Lock()
    done = 0

    def store(cid: str) -> products.StoredFile:
        nonlocal done
        if stop.is_set():
            raise RuntimeError("storing the maps was stopped: the ingest transaction failed")
        rel = f"maps/{cid}.fits"
        out = products.store_file(data_dir, mock_dir / rel, expected_sha256=sums.get(rel))
        if progress is not None:
            with lock:
                done += 1
                progress(done, len(ids))
        return out

    with ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="cm-store-file") as pool:
        return list(pool.map(store, ids))


def _write_catalogue(
    session: Session,
    name: str,
    truth: QTable,
    manifest: dict[str, Any],
    config: dict[str, Any],
    mock_dir: Path,
    data_dir: Path,
) -> tuple[int, list[int], set[int], int]:
    """Upsert the catalogue, its clusters and observables.

    Returns the catalogue id, the cluster ids (truth-table order), the ids of the clusters
    this transaction inserted, and the number of observables written.
    """
    stores.record_store(session, data_dir)
    cat_id = ingest.upsert_catalogue(
        session,
        name=name,
        kind="simulation",
        description=f"eROSITA-like mock catalogue generated by clustermass ({len(truth)} clusters)",
        citation="clustermass mock generator; see docs/mocks.md for the physics references",
        source_path=str(mock_dir.resolve()),
        source_sha256=hashlib.sha256((mock_dir / "manifest.json").read_bytes()).hexdigest(),
        seed=config.get("seed"),
        cosmology=manifest.get("cosmology", {}),
        config=config,
        box_size_mpc_h=config.get("box_size"),
    )
    new_ids: set[int] = set()
    ids = ingest.upsert_clusters(session, cat_id, _cluster_rows(truth), new_ids=new_ids)
    cluster_ids = [ids[str(c)] for c in truth["cluster_id"]]
    fresh = np.isin(cluster_ids, list(new_ids))
    n_obs = 0
    for new in (True, False):  # the observables of a cluster just inserted are plain inserts
        if (fresh == new).any():
            rows = _observable_rows(truth, cluster_ids, fresh == new)
            n_obs += ingest.copy_observables(session, rows, new=new)
    return cat_id, cluster_ids, new_ids, n_obs


def _observable_rows(
    truth: QTable, cluster_ids: list[int], keep: np.ndarray
) -> Iterator[tuple[int, str, float, str]]:
    """``(cluster_id, name, value, unit)`` of the finite scalar truth values of rows ``keep``."""
    ids = np.asarray(cluster_ids)
    for col in _observable_columns(truth):
        unit = _unit_string(truth[col])
        values = _values(truth[col]).astype(float)
        ok = np.isfinite(values) & keep
        for cluster_id, value in zip(ids[ok].tolist(), values[ok].tolist(), strict=True):
            yield cluster_id, col, value, unit


def _product_rows(
    cluster_ids: list[int], stored: list[products.StoredFile]
) -> list[dict[str, Any]]:
    """Build the four product rows (total, AGN, ICM maps, galaxies) of each cluster's map."""
    pixel = 4.6 / 128
    rows = []
    for cluster_id, sf in zip(cluster_ids, stored, strict=True):
        for kind, hdu in MAP_HDUS.items():
            rows.append(
                {
                    "cluster_id": cluster_id,
                    "kind": kind,
                    "label": "",
                    "instrument": INSTRUMENT,
                    "bands_kev": BANDS_KEV if kind != "galaxies" else "",
                    "path": sf.path,
                    "sha256": sf.sha256,
                    "format": sf.format,
                    "shape": [3, 128, 128] if kind != "galaxies" else [0],
                    "dtype": "int32" if kind != "galaxies" else "table",
                    "pixel_scale_mpc_h": pixel if kind != "galaxies" else None,
                    "size_bytes": sf.size_bytes,
                    "meta": {"hdu": hdu},
                }
            )
    return rows
