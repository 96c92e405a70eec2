"""Catalogues, clusters, their observables and their file products."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.tables.base import (
    CATALOGUE_KINDS,
    PRODUCT_KINDS,
    Base,
    _created,
    _in,
)


class Catalogue(Base):
    """Where clusters come from: a simulation run (mock) or a survey catalogue."""

    __tablename__ = "catalogues"
    __table_args__ = (
        CheckConstraint(_in("kind", CATALOGUE_KINDS), name="kind"),
        {"comment": "Sources of clusters: mock simulation runs and survey catalogues"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, comment="Natural key")
    kind: Mapped[str] = mapped_column(String(16), comment="'simulation' or 'survey'")
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    citation: Mapped[str | None] = mapped_column(Text, comment="Reference(s) to cite")
    source_path: Mapped[str | None] = mapped_column(Text, comment="File the catalogue came from")
    source_sha256: Mapped[str | None] = mapped_column(String(64), comment="sha256 of that file")
    seed: Mapped[int | None] = mapped_column(BigInteger, comment="Random seed of a mock run")
    cosmology: Mapped[dict[str, Any]] = mapped_column(
        comment="astropy cosmology parameters the masses assume (name, H0 [km/s/Mpc], Om0, ...)"
    )
    config: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default="{}", comment="Generator or reader configuration"
    )
    box_size_mpc_h: Mapped[float | None] = mapped_column(
        Float, info={"unit": "Mpc"}, comment="Comoving box side of a simulation [h^-1 Mpc]"
    )
    created_at: Mapped[dt.datetime] = _created()

    clusters: Mapped[list[Cluster]] = relationship(back_populates="catalogue")


class Cluster(Base):
    """A galaxy cluster, simulated (box position, snapshot) or observed (RA/Dec)."""

    __tablename__ = "clusters"
    __table_args__ = (
        UniqueConstraint("catalogue_id", "external_id"),
        CheckConstraint("redshift > 0", name="redshift_positive"),
        CheckConstraint("ra_deg IS NULL OR (ra_deg >= 0 AND ra_deg < 360)", name="ra_range"),
        CheckConstraint("dec_deg IS NULL OR (dec_deg BETWEEN -90 AND 90)", name="dec_range"),
        CheckConstraint("r500c_mpc_h IS NULL OR r500c_mpc_h > 0", name="r500c_positive"),
        Index("ix_clusters_name", "name"),
        {"comment": "Clusters with truth (mocks) or catalogue values (surveys)"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    catalogue_id: Mapped[int] = mapped_column(
        ForeignKey("catalogues.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(
        String(100), comment="Identifier within the catalogue (natural key with catalogue_id)"
    )
    name: Mapped[str | None] = mapped_column(String(200), comment="Common name, e.g. 'A3158'")
    ra_deg: Mapped[float | None] = mapped_column(
        Float, info={"unit": "deg"}, comment="Right ascension, ICRS [deg]"
    )
    dec_deg: Mapped[float | None] = mapped_column(
        Float, info={"unit": "deg"}, comment="Declination, ICRS [deg]"
    )
    pos_x_mpc_h: Mapped[float | None] = mapped_column(
        Float, info={"unit": "Mpc"}, comment="Comoving box position x [h^-1 Mpc] (simulations)"
    )
    pos_y_mpc_h: Mapped[float | None] = mapped_column(
        Float, info={"unit": "Mpc"}, comment="Comoving box position y [h^-1 Mpc] (simulations)"
    )
    pos_z_mpc_h: Mapped[float | None] = mapped_column(
        Float,
        info={"unit": "Mpc"},
        comment="Comoving box position z [h^-1 Mpc]; the line of sight (simulations)",
    )
    snapshot: Mapped[int | None] = mapped_column(Integer, comment="Snapshot index (simulations)")
    redshift: Mapped[float] = mapped_column(Float, info={"unit": ""}, comment="Redshift")
    log10_m500c: Mapped[float | None] = mapped_column(
        Float,
        info={"unit": "dex(solMass / littleh)"},
        comment="log10 M500c [h^-1 Msun]: truth (mocks) or catalogue value converted to M500c",
    )
    log10_m500c_err: Mapped[float | None] = mapped_column(
        Float, info={"unit": "dex"}, comment="1-sigma uncertainty of log10_m500c [dex]"
    )
    log10_m500c_err_lo: Mapped[float | None] = mapped_column(
        Float,
        info={"unit": "dex"},
        comment="Lower 1-sigma uncertainty of log10_m500c [dex] (asymmetric errors)",
    )
    log10_m500c_err_hi: Mapped[float | None] = mapped_column(
        Float,
        info={"unit": "dex"},
        comment="Upper 1-sigma uncertainty of log10_m500c [dex] (asymmetric errors)",
    )
    r500c_mpc_h: Mapped[float | None] = mapped_column(
        Float, info={"unit": "Mpc"}, comment="R500c, proper (physical) length [h^-1 Mpc]"
    )
    mass_note: Mapped[str] = mapped_column(
        Text,
        default="",
        server_default="",
        comment="Provenance of the mass: definition, conversion applied (e.g. M200c->M500c)",
    )
    created_at: Mapped[dt.datetime] = _created()

    catalogue: Mapped[Catalogue] = relationship(back_populates="clusters")
    observables: Mapped[list[Observable]] = relationship(
        back_populates="cluster", cascade="all, delete-orphan", passive_deletes=True
    )


class Observable(Base):
    """A scalar mass proxy of one cluster (T, L_X, M_gas, N_gal, sigma_v, N_phot, ...).

    One row per cluster and name (a mock writes ~39). Measured for issue 19 (3,300 clusters x
    39 values, COPY into a stage + one INSERT ... SELECT, loaded 2-core machine): rows 2.0 s,
    one JSONB document per cluster 0.39 s, 39 typed columns 0.24 s; reading one proxy of every
    cluster 21 / 8 / 6 ms. Rows were kept: survey observables carry a unit, error and note per
    value, every reader (proxy fits, ``v_observables``, ``query cluster``, re-ingest clean-up)
    is written against them, and through COPY the rows already ingest at a fraction of the
    time the file store takes to hash the maps.
    """

    __tablename__ = "observables"
    __table_args__ = (
        UniqueConstraint("cluster_id", "name"),
        {"comment": "Scalar observables / mass proxies, one row per cluster and name"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64), comment="e.g. T, L_X, M_gas, sigma_v_obs")
    value: Mapped[float] = mapped_column(Float, comment="Value in `unit`")
    unit: Mapped[str] = mapped_column(
        String(64), default="", server_default="", comment="astropy unit string ('' = 1)"
    )
    error: Mapped[float | None] = mapped_column(Float, comment="1-sigma error in `unit`")
    error_lo: Mapped[float | None] = mapped_column(
        Float, comment="Lower 1-sigma error in `unit` (asymmetric errors)"
    )
    error_hi: Mapped[float | None] = mapped_column(
        Float, comment="Upper 1-sigma error in `unit` (asymmetric errors)"
    )
    note: Mapped[str] = mapped_column(Text, default="", server_default="")

    cluster: Mapped[Cluster] = relationship(back_populates="observables")


class Product(Base):
    """A large array stored as a content-addressed file (FITS, npz or torch .pt)."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("cluster_id", "kind", "label"),
        CheckConstraint(_in("kind", PRODUCT_KINDS), name="kind"),
        CheckConstraint(_in("format", ("fits", "npz", "pt", "raw")), name="format"),
        Index("ix_products_sha256", "sha256"),
        {"comment": "Files holding large arrays; the DB holds path, checksum and shape only"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), comment="Cluster it belongs to, if any"
    )
    kind: Mapped[str] = mapped_column(String(32), comment="What the array is (see PRODUCT_KINDS)")
    label: Mapped[str] = mapped_column(
        String(200),
        default="",
        server_default="",
        comment="Distinguishes products of one kind, e.g. instrument or 'run:12:saliency'",
    )
    instrument: Mapped[str] = mapped_column(
        String(64), default="", server_default="", comment="e.g. 'eROSITA (mock)', 'ROSAT PSPC'"
    )
    bands_kev: Mapped[str] = mapped_column(
        String(200),
        default="",
        server_default="",
        comment="Energy bands along axis 0 [keV], e.g. '0.5-1.2,1.2-2.0,2.0-7.0'",
    )
    path: Mapped[str] = mapped_column(Text, comment="Path relative to the data directory")
    sha256: Mapped[str] = mapped_column(String(64), comment="sha256 of the file's bytes")
    format: Mapped[str] = mapped_column(String(8), comment="'fits', 'npz', 'pt' or 'raw'")
    shape: Mapped[list[int]] = mapped_column(comment="Array shape")
    dtype: Mapped[str] = mapped_column(String(32), comment="numpy dtype string")
    pixel_scale_mpc_h: Mapped[float | None] = mapped_column(
        Float, info={"unit": "Mpc"}, comment="Pixel side, comoving [h^-1 Mpc]"
    )
    size_bytes: Mapped[int] = mapped_column(BigInteger, info={"unit": "byte"})
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = _created()
