"""Load a catalogue's clusters from the database and the file store into model arrays.

The rows give truth, positions, snapshots and observables; the ``products`` rows give the map
files (one FITS file per mock cluster, HDUs ``TOTAL``/``AGN``/``ICM``/``GALAXIES``). A loaded
catalogue is cached per process (a training worker runs several folds of one catalogue in a
row), keyed by the database URL, the catalogue and the newest product id, so new products are
never missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db import catalogues, products
from db.errors import CatalogueNotFoundError
from db.session import session_scope
from mocks import read_catalogue, read_map_file
from models import ClusterArrays, RaggedGalaxies
from services.database import ready_engine
from services.paths import explain_missing_products
from services.settings import Settings, get_settings

__all__ = [
    "CatalogueData",
    "resolve_catalogue_id",
    "load_catalogue_data",
    "mock_directory_arrays",
    "clear_cache",
]

log = logging.getLogger(__name__)


class CatalogueDataError(ValueError):
    """A catalogue cannot be turned into model inputs (no clusters, no maps, ...)."""


@dataclass
class CatalogueData:
    """One catalogue as arrays, aligned with ``cluster_ids`` (database ids, ascending).

    Attributes
    ----------
    arrays : models.ClusterArrays
        Total counts (N, 3, 128, 128), redshift, log10 M500c [h^-1 Msun], positions
        [h^-1 Mpc], snapshot, galaxies (all in the cylinder) and scalar observables.
    counts_agn, counts_icm : ndarray of int32 or None
        AGN-only and ICM-only counts (mocks), for the attribution studies.
    r500c_mpc_h : ndarray
        R500c, proper [h^-1 Mpc].
    box_size_mpc_h : float or None
        Comoving side of the simulation box.
    """

    catalogue_id: int
    cluster_ids: np.ndarray
    arrays: object
    counts_agn: np.ndarray | None
    counts_icm: np.ndarray | None
    r500c_mpc_h: np.ndarray
    box_size_mpc_h: float | None

    def index_of(self, cluster_ids: np.ndarray | list[int]) -> np.ndarray:
        """Row positions of the given database cluster ids."""
        pos = np.searchsorted(self.cluster_ids, cluster_ids)
        if np.any(pos >= len(self.cluster_ids)) or np.any(self.cluster_ids[pos] != cluster_ids):
            raise CatalogueDataError("some cluster ids are not in this catalogue")
        return pos


_CACHE: dict[tuple, CatalogueData] = {}


def clear_cache() -> None:
    """Forget every cached catalogue."""
    _CACHE.clear()


def load_catalogue_data(
    engine: Engine,
    catalogue_id: int,
    data_dir: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
) -> CatalogueData:
    """Load every cluster of a simulated catalogue with its maps, galaxies and observables.

    Raises
    ------
    CatalogueDataError
        Unknown catalogue, no clusters, or clusters without map products.
    db.errors.ProductIntegrityError
        A map file is missing, or its bytes do not match the sha256 recorded at ingest (every
        map is verified before it is used; the message names the file and the cluster).
    """
    with Session(engine) as session:
        try:
            cat = catalogues.get_catalogue(session, catalogue_id)
        except CatalogueNotFoundError as exc:
            raise CatalogueDataError(str(exc)) from exc
        newest = catalogues.newest_product_id(session, catalogue_id)
        key = (str(engine.url), catalogue_id, newest, str(data_dir))
        if use_cache and key in _CACHE:
            return _CACHE[key]
        rows = catalogues.clusters_with_maps(session, catalogue_id)
        if not rows:
            raise CatalogueDataError(f"catalogue {cat.name!r} (id {catalogue_id}) has no clusters")
        no_map = [c.external_id for c, path, _ in rows if path is None]
        if no_map:
            raise CatalogueDataError(
                f"catalogue {cat.name!r}: {len(no_map)} clusters have no X-ray map product "
                f"(first: {no_map[:3]}); re-run the ingestion"
            )
        cluster_ids = np.array([c.id for c, _, _ in rows], dtype=np.int64)
        scalars = catalogues.observable_table(session, cluster_ids)
        box = cat.box_size_mpc_h
        clusters = [c for c, _, _ in rows]
        map_files = [_Rel(p, sha) for _, p, sha in rows]
        cat_name = cat.name

    n = len(clusters)
    total = np.empty((n, 3, 128, 128), dtype=np.int32)
    agn = np.empty_like(total)
    icm = np.empty_like(total)
    gal_x, gal_y, gal_v, offsets = [], [], [], [0]
    for i, (cl, rel) in enumerate(zip(clusters, map_files, strict=True)):
        # every map is checked against its sha256 before it becomes a model input
        what = f"X-ray maps of cluster {cl.external_id!r} (id {cl.id}) in catalogue {cat_name!r}"
        with explain_missing_products(engine, data_dir):
            path = products.resolve(data_dir, rel, verify=True, what=what)
        maps = read_map_file(path, cl.external_id)
        total[i], agn[i], icm[i] = maps["TOTAL"], maps["AGN"], maps["ICM"]
        g = maps["GALAXIES"]
        gal_x.append(np.asarray(g["x_mpc_h"], float))
        gal_y.append(np.asarray(g["y_mpc_h"], float))
        gal_v.append(np.asarray(g["v_los_km_s"], float))
        offsets.append(offsets[-1] + len(gal_x[-1]))
        if progress is not None:
            progress(i + 1, n)
    galaxies = RaggedGalaxies(
        np.asarray(offsets, dtype=np.int64),
        np.concatenate(gal_x) if gal_x else np.zeros(0),
        np.concatenate(gal_y) if gal_y else np.zeros(0),
        np.concatenate(gal_v) if gal_v else np.zeros(0),
    )
    arrays = ClusterArrays(
        images=total,
        redshift=np.array([c.redshift for c in clusters]),
        log10_m500c=np.array([c.log10_m500c for c in clusters], dtype=float),
        positions=np.array(
            [[c.pos_x_mpc_h, c.pos_y_mpc_h, c.pos_z_mpc_h] for c in clusters], float
        ),
        snapshot=np.array([c.snapshot if c.snapshot is not None else -1 for c in clusters]),
        cluster_id=cluster_ids.copy(),
        galaxies=galaxies,
        scalars=scalars,
    )
    data = CatalogueData(
        catalogue_id=catalogue_id,
        cluster_ids=cluster_ids,
        arrays=arrays,
        counts_agn=agn,
        counts_icm=icm,
        r500c_mpc_h=np.array([c.r500c_mpc_h or np.nan for c in clusters], dtype=float),
        box_size_mpc_h=box,
    )
    if use_cache:
        _CACHE.clear()  # one catalogue per process at a time: maps are large
        _CACHE[key] = data
    return data


@dataclass(frozen=True)
class _Rel:
    """Adapter: :func:`db.products.resolve` takes anything with ``path`` and ``sha256``."""

    path: str
    sha256: str


def mock_directory_arrays(data: Path) -> ClusterArrays:
    """Read a mock catalogue directory (no database) into :class:`models.ClusterArrays`.

    Raises
    ------
    FileNotFoundError
        ``data`` does not exist.
    """
    if not data.exists():
        raise FileNotFoundError(f"catalogue directory {data} does not exist")
    cat = read_catalogue(data)
    return ClusterArrays.from_parts(cat.truth, cat.counts_total, getattr(cat, "galaxies", None))


def resolve_catalogue_id(ref: str | int, settings: Settings | None = None) -> int:
    """Return the id of the catalogue named ``ref`` (or with id ``ref``).

    Raises
    ------
    db.errors.CatalogueNotFoundError
        No such catalogue (the message lists the known names).
    """
    with session_scope(ready_engine(settings or get_settings())) as session:
        return catalogues.resolve_catalogue(session, ref).id
