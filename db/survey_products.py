"""Observed images and member galaxies as ``products`` of clusters.

An image set becomes, per cluster and label ``"<instrument>/<lo>-<hi>keV"``:

* ``xray_observed``: observed counts on the model grid, native bands along axis 0 (npz
  ``counts``, ``bands_kev``);
* ``exposure`` [s], ``background`` [counts/pixel] (if given), same shape;
* ``mask``: 1 where a grid pixel is outside the footprint or unexposed.

Their ``meta`` holds the grid WCS, cosmology, reprojection settings and source-file checksums;
:func:`load_grid` rebuilds a :class:`survey.images.GridImages` from them, so the model
input can be made for any model kind later. Galaxies become a ``galaxies`` product (mock
convention: ``x_mpc_h``, ``y_mpc_h``, ``v_los_km_s``, ``is_member``) plus observables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db import products
from db.errors import ClusterNotFoundError
from db.ingest import upsert_catalogue
from db.mass_catalogue import store_cluster_names
from db.tables import Catalogue, Cluster, ClusterName, Product
from survey.cosmology import PLANCK18
from survey.images import GridImages
from survey.names import iau_name
from survey.specs import ClusterRef

__all__ = [
    "cluster_identity",
    "TARGETS_CATALOGUE",
    "resolve_cluster",
    "image_label",
    "store_grid",
    "load_grid",
    "observed_labels",
    "store_galaxies",
]

TARGETS_CATALOGUE = "observed_targets"
_GRID_KINDS = ("xray_observed", "exposure", "background", "mask")


def _describe(c: Cluster) -> str:
    return f"{c.name or c.external_id} (id {c.id}, z={c.redshift:.4f})"


def resolve_cluster(session: Session, ref: ClusterRef) -> Cluster:
    """Find the cluster an image or galaxy table belongs to, or create an observed target.

    Raises
    ------
    ClusterNotFoundError
        Catalogue/id or name not found, or a name matches several clusters (listed).
    """
    if ref.catalogue is not None and ref.external_id is not None:
        cl = session.scalar(
            select(Cluster)
            .join(Catalogue)
            .where(Catalogue.name == ref.catalogue, Cluster.external_id == ref.external_id)
        )
        if cl is None:
            raise ClusterNotFoundError(
                f"no cluster {ref.external_id!r} in catalogue {ref.catalogue!r}; ingest the "
                "catalogue first (clustermass ingest catalogue FILE)"
            )
        return cl
    if ref.name is not None:
        key = ref.name.replace(" ", "").lower()
        aliased = select(ClusterName.cluster_id).where(
            ClusterName.name_key == func.cm_name_key(ref.name)
        )
        hits = session.scalars(
            select(Cluster)
            .where(
                or_(
                    Cluster.id.in_(aliased),
                    func.lower(func.replace(Cluster.name, " ", "")) == key,
                    func.lower(func.replace(Cluster.external_id, " ", "")) == key,
                )
            )
            .order_by(Cluster.id)
        ).all()
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1 and ref.ra is None:
            raise ClusterNotFoundError(
                f"name {ref.name!r} matches {len(hits)} clusters: "
                f"{[_describe(c) for c in hits][:10]}; give catalogue + external_id"
            )
        if not hits and ref.ra is None:
            raise ClusterNotFoundError(
                f"no cluster named {ref.name!r}; give catalogue + external_id or ra/dec/z"
            )
    assert ref.ra is not None and ref.dec is not None and ref.z is not None
    return _nearest_or_new(session, ref)


def _nearest_or_new(session: Session, ref: ClusterRef) -> Cluster:
    radius_deg = ref.match_radius_arcsec / 3600.0
    cands = session.scalars(
        select(Cluster).where(
            Cluster.dec_deg.between(ref.dec - radius_deg, ref.dec + radius_deg),  # type: ignore[operator]
            func.abs(Cluster.redshift - ref.z) <= 0.05,
        )
    ).all()
    target = SkyCoord(ref.ra * u.deg, ref.dec * u.deg)
    best, best_sep = None, np.inf
    for c in cands:
        if c.ra_deg is None or c.dec_deg is None:
            continue
        sep = target.separation(SkyCoord(c.ra_deg * u.deg, c.dec_deg * u.deg)).arcsec
        if sep <= ref.match_radius_arcsec and sep < best_sep:
            best, best_sep = c, sep
    if best is not None:
        return best
    cat_id = upsert_catalogue(
        session,
        name=TARGETS_CATALOGUE,
        kind="survey",
        description="Clusters named by image sets or galaxy tables, not in any ingested catalogue",
        cosmology=PLANCK18.record(),
    )
    ext = f"J{ref.ra:.4f}{ref.dec:+.4f}"
    cl = session.scalar(
        select(Cluster).where(Cluster.catalogue_id == cat_id, Cluster.external_id == ext)
    )
    if cl is None:
        iau = iau_name(ref.ra, ref.dec)
        cl = Cluster(
            catalogue_id=cat_id,
            external_id=ext,
            name=ref.name or iau,
            ra_deg=ref.ra,
            dec_deg=ref.dec,
            redshift=ref.z,
            mass_note="observed target: no catalogue mass",
        )
        session.add(cl)
        session.flush()
        names = [(cl.id, iau, "iau"), (cl.id, ext, "external_id")]
        store_cluster_names(session, names + ([(cl.id, ref.name, "target")] if ref.name else []))
    return cl


def image_label(instrument: str, bands_kev: list[tuple[float, float]]) -> str:
    """Product label ``"<instrument>/<lo>-<hi>keV"`` over the full band range."""
    lo, hi = min(b[0] for b in bands_kev), max(b[1] for b in bands_kev)
    return f"{instrument}/{lo:g}-{hi:g}keV"


def _bands_text(bands: list[tuple[float, float]]) -> str:
    return ",".join(f"{lo:g}-{hi:g}" for lo, hi in bands)


def store_grid(
    session: Session,
    data_dir: Path,
    cluster_id: int,
    grid: GridImages,
    *,
    meta: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Store a reprojected observation as products; return ``{kind: product id}``."""
    label = image_label(grid.instrument, grid.bands_kev)
    meta = {
        **grid.meta,
        **(meta or {}),
        "instrument": grid.instrument,
        "bands_kev": [list(b) for b in grid.bands_kev],
        "centre_deg": [grid.ra_deg, grid.dec_deg],
        "redshift": grid.redshift,
        "pixel_scale_arcsec": grid.pixel_scale_arcsec,
        "input_domain": "observed",
    }
    arrays = grid.arrays()
    parts: dict[str, dict[str, np.ndarray]] = {
        "xray_observed": {"counts": arrays["counts"], "bands_kev": arrays["bands_kev"]},
        "exposure": {"exposure": arrays["exposure"]},
        "mask": {"mask": arrays["mask"]},
    }
    if "background" in arrays:
        parts["background"] = {"background": arrays["background"]}
    ids = {}
    for kind, arrs in parts.items():
        stored = products.store_arrays(data_dir, arrs)
        main = next(iter(arrs.values()))
        ids[kind] = products.upsert_product(
            session,
            stored=stored,
            kind=kind,
            shape=main.shape,
            dtype=main.dtype.str,
            cluster_id=cluster_id,
            label=label,
            instrument=grid.instrument,
            bands_kev=_bands_text(grid.bands_kev) if kind != "mask" else "",
            pixel_scale_mpc_h=grid.pixel_scale_mpc_h,
            meta=meta,
        )
    return ids


def observed_labels(session: Session, cluster_id: int) -> list[str]:
    """Labels of the observed image sets stored for a cluster."""
    return list(
        session.scalars(
            select(Product.label)
            .where(Product.cluster_id == cluster_id, Product.kind == "xray_observed")
            .order_by(Product.label)
        )
    )


def load_grid(
    session: Session, data_dir: Path, cluster_id: int, label: str | None = None
) -> GridImages:
    """Rebuild the stored observation of a cluster (the only one, or the one with ``label``).

    Raises
    ------
    ClusterNotFoundError
        No observed image for the cluster, or several and no ``label`` (they are listed).
    """
    labels = observed_labels(session, cluster_id)
    if label is None:
        if len(labels) != 1:
            raise ClusterNotFoundError(
                f"cluster id {cluster_id} has {len(labels)} observed image sets {labels}; "
                + ("ingest one first (clustermass ingest image)" if not labels else "pick a label")
            )
        label = labels[0]
    elif label not in labels:
        raise ClusterNotFoundError(
            f"cluster id {cluster_id} has no observed image {label!r}; it has {labels}"
        )
    rows = {
        p.kind: p
        for p in session.scalars(
            select(Product).where(
                Product.cluster_id == cluster_id,
                Product.label == label,
                Product.kind.in_(_GRID_KINDS),
            )
        )
    }
    load = {k: products.load_arrays(data_dir, p) for k, p in rows.items()}
    meta = dict(rows["xray_observed"].meta)
    return GridImages(
        counts=load["xray_observed"]["counts"].astype(np.float64),
        exposure=load["exposure"]["exposure"].astype(np.float64),
        background=(
            load["background"]["background"].astype(np.float64) if "background" in load else None
        ),
        mask=load["mask"]["mask"].astype(bool),
        bands_kev=[tuple(b) for b in load["xray_observed"]["bands_kev"].tolist()],
        instrument=meta["instrument"],
        ra_deg=meta["centre_deg"][0],
        dec_deg=meta["centre_deg"][1],
        redshift=meta["redshift"],
        pixel_scale_mpc_h=float(rows["xray_observed"].pixel_scale_mpc_h or 0.0),
        pixel_scale_arcsec=meta["pixel_scale_arcsec"],
        meta=meta,
    )


def cluster_identity(session: Session, cluster_id: int) -> dict[str, Any]:
    """Return a cluster's identity and catalogue mass (for the meta of a model input)."""
    cl = session.get(Cluster, int(cluster_id))
    if cl is None:
        raise ClusterNotFoundError(f"cluster id {cluster_id} is not in the database")
    cat = session.scalar(select(Catalogue.name).where(Catalogue.id == cl.catalogue_id))
    return {
        "cluster_id": cl.id,
        "cluster": cl.name or cl.external_id,
        "catalogue": cat,
        "catalogue_log10_m500c": cl.log10_m500c,
        "catalogue_log10_m500c_err": cl.log10_m500c_err,
        "catalogue_mass_note": cl.mass_note,
    }


def store_galaxies(
    session: Session,
    data_dir: Path,
    cluster_id: int,
    arrays: dict[str, np.ndarray],
    *,
    label: str,
    meta: dict[str, Any],
    kde_cube: np.ndarray | None = None,
) -> dict[str, int]:
    """Store a ``galaxies`` product (and a ``kde_cube`` when one was built)."""
    stored = products.store_arrays(data_dir, arrays)
    ids = {
        "galaxies": products.upsert_product(
            session,
            stored=stored,
            kind="galaxies",
            shape=arrays["x_mpc_h"].shape,
            dtype="table",
            cluster_id=cluster_id,
            label=label,
            meta=meta,
        )
    }
    if kde_cube is not None:
        stored = products.store_arrays(data_dir, {"kde": kde_cube.astype(np.float32)})
        ids["kde_cube"] = products.upsert_product(
            session,
            stored=stored,
            kind="kde_cube",
            shape=kde_cube.shape,
            dtype=np.dtype(np.float32).str,
            cluster_id=cluster_id,
            label=label,
            meta=meta,
        )
    return ids
