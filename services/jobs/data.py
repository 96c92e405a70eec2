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
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db import products
from db.tables import Catalogue, Cluster, Observable, Product

__all__ = ["CatalogueData", "load_catalogue_data", "clear_cache"]

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


def _scalars(session: Session, cluster_ids: np.ndarray) -> dict[str, np.ndarray]:
    rows = session.execute(
        select(Observable.cluster_id, Observable.name, Observable.value)
        .join(Cluster, Cluster.id == Observable.cluster_id)
        .where(Observable.cluster_id.in_(cluster_ids.tolist()))
    ).all()
    out: dict[str, np.ndarray] = {}
    pos = {int(c): i for i, c in enumerate(cluster_ids)}
    for cid, name, value in rows:
        arr = out.setdefault(name, np.full(len(cluster_ids), np.nan))
        arr[pos[cid]] = value
    return out


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
    """
    from mocks import read_map_file
    from models import ClusterArrays, RaggedGalaxies

    with Session(engine) as session:
        cat = session.get(Catalogue, catalogue_id)
        if cat is None:
            raise CatalogueDataError(f"no catalogue with id {catalogue_id}")
        newest = session.scalar(
            select(func.max(Product.id))
            .join(Cluster, Cluster.id == Product.cluster_id)
            .where(Cluster.catalogue_id == catalogue_id)
        )
        key = (str(engine.url), catalogue_id, newest, str(data_dir))
        if use_cache and key in _CACHE:
            return _CACHE[key]
        rows = session.execute(
            select(Cluster, Product.path)
            .join(
                Product,
                (Product.cluster_id == Cluster.id) & (Product.kind == "xray_total"),
                isouter=True,
            )
            .where(Cluster.catalogue_id == catalogue_id)
            .order_by(Cluster.id)
        ).all()
        if not rows:
            raise CatalogueDataError(f"catalogue {cat.name!r} (id {catalogue_id}) has no clusters")
        no_map = [c.external_id for c, path in rows if path is None]
        if no_map:
            raise CatalogueDataError(
                f"catalogue {cat.name!r}: {len(no_map)} clusters have no X-ray map product "
                f"(first: {no_map[:3]}); re-run the ingestion"
            )
        cluster_ids = np.array([c.id for c, _ in rows], dtype=np.int64)
        scalars = _scalars(session, cluster_ids)
        box = cat.box_size_mpc_h
        clusters = [c for c, _ in rows]
        paths = [p for _, p in rows]

    n = len(clusters)
    total = np.empty((n, 3, 128, 128), dtype=np.int32)
    agn = np.empty_like(total)
    icm = np.empty_like(total)
    gal_x, gal_y, gal_v, offsets = [], [], [], [0]
    for i, (cl, rel) in enumerate(zip(clusters, paths, strict=True)):
        path = products.resolve(data_dir, _Rel(rel))
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
    sha256: str = ""
