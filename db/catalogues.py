"""Read queries of catalogues: look-ups by name or id, cluster rows with their maps, observables.

The training, prediction and report jobs load catalogues through these functions; writes of
catalogues are in :mod:`db.ingest` (simulations) and :mod:`db.survey` (survey files).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import CatalogueNotFoundError
from db.tables import Catalogue, Cluster, Observable, Product

__all__ = [
    "get_catalogue",
    "resolve_catalogue",
    "cluster_positions",
    "newest_product_id",
    "clusters_with_maps",
    "observable_table",
]


def get_catalogue(session: Session, catalogue_id: int) -> Catalogue:
    """Return the catalogue with that id, or raise :class:`CatalogueNotFoundError`."""
    cat = session.get(Catalogue, int(catalogue_id))
    if cat is None:
        raise CatalogueNotFoundError(f"no catalogue with id {catalogue_id}")
    return cat


def resolve_catalogue(session: Session, ref: str | int) -> Catalogue:
    """Return the catalogue named ``ref`` (or with id ``ref``); the error lists the known names."""
    if isinstance(ref, int) or str(ref).isdigit():
        found = session.get(Catalogue, int(ref))
    else:
        found = session.scalar(select(Catalogue).where(Catalogue.name == ref))
    if found is None:
        names = session.scalars(select(Catalogue.name).order_by(Catalogue.name)).all()
        raise CatalogueNotFoundError(f"no catalogue {ref!r}; known: {', '.join(names) or 'none'}")
    return found


def cluster_positions(session: Session, catalogue_id: int) -> np.ndarray:
    """Return ``(N, 4)`` comoving x, y, z [h^-1 Mpc] and snapshot (-1 if none), by cluster id."""
    rows = session.execute(
        select(Cluster.pos_x_mpc_h, Cluster.pos_y_mpc_h, Cluster.pos_z_mpc_h, Cluster.snapshot)
        .where(Cluster.catalogue_id == catalogue_id)
        .order_by(Cluster.id)
    ).all()
    return np.array(
        [[r[0], r[1], r[2], r[3] if r[3] is not None else -1] for r in rows], float
    ).reshape(-1, 4)


def newest_product_id(session: Session, catalogue_id: int) -> int | None:
    """Return the newest product id of the catalogue's clusters (a cache key: new files show)."""
    return session.scalar(
        select(func.max(Product.id))
        .join(Cluster, Cluster.id == Product.cluster_id)
        .where(Cluster.catalogue_id == catalogue_id)
    )


def clusters_with_maps(
    session: Session, catalogue_id: int
) -> list[tuple[Cluster, str | None, str | None]]:
    """Return ``(Cluster, path, sha256)`` of each cluster's ``xray_total`` product, by id.

    ``path`` and ``sha256`` are None for a cluster without one.
    """
    return [
        (c, p, sha)
        for c, p, sha in session.execute(
            select(Cluster, Product.path, Product.sha256)
            .join(
                Product,
                (Product.cluster_id == Cluster.id) & (Product.kind == "xray_total"),
                isouter=True,
            )
            .where(Cluster.catalogue_id == catalogue_id)
            .order_by(Cluster.id)
        ).all()
    ]


def observable_table(session: Session, cluster_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Return observable name -> values aligned with ``cluster_ids`` (NaN where missing)."""
    rows = session.execute(
        select(Observable.cluster_id, Observable.name, Observable.value).where(
            Observable.cluster_id.in_(np.asarray(cluster_ids).tolist())
        )
    ).all()
    out: dict[str, np.ndarray] = {}
    pos = {int(c): i for i, c in enumerate(cluster_ids)}
    for cid, name, value in rows:
        arr = out.setdefault(name, np.full(len(cluster_ids), np.nan))
        arr[pos[cid]] = value
    return out
