r"""The clustermass schema: SQLAlchemy 2 typed ORM tables.

Conventions
-----------
* Units are part of column names (``ra_deg``, ``r500c_mpc_h``) *and* stated in
  ``info={"unit": ...}`` (an astropy unit string; a test parses every one) and in the column
  comment, which PostgreSQL keeps (``\\d+ clusters`` in psql shows it).
* Masses are stored as ``log10(M500c / (h^-1 Msun))`` in the cosmology recorded on the
  cluster's catalogue (column ``catalogues.cosmology``), i.e. in units of ``dex(solMass)`` with the
  little-h convention stated in the comment.
* Large arrays (photon maps, KDE cubes, saliency, galaxy tables, network weights) never enter the
  database: they are files in the content-addressed store (see :mod:`db.products`) and
  :class:`Product` rows hold their path, sha256, shape and dtype.
* Galaxies (members and interlopers) are stored as a ``galaxies`` product per cluster: an npz
  table with columns ``x_mpc_h``, ``y_mpc_h``, ``v_los_km_s``, ``is_member``. At ~100 galaxies per
  cluster a table would hold ~10^5-10^6 rows that are only ever read per cluster, as a whole,
  by the KDE builder; a file keeps ingest fast and the schema small.
* Every table that a task writes has a natural key (unique constraint) so that writes are upserts
  and redelivered tasks write nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "Catalogue",
    "Cluster",
    "Observable",
    "Product",
    "ModelRun",
    "ModelRunFold",
    "Prediction",
    "Attribution",
    "ClusterMatch",
    "IngestFile",
    "IngestReject",
    "CATALOGUE_KINDS",
    "PRODUCT_KINDS",
    "MODEL_KINDS",
    "RUN_STATUSES",
    "ATTRIBUTION_METHODS",
    "SCATTER_AXES",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CATALOGUE_KINDS = ("simulation", "survey")
PRODUCT_KINDS = (
    "xray_total",  # AGN + ICM + background photon counts (mock), bands along axis 0
    "xray_agn",  # AGN-only counts (mock)
    "xray_icm",  # ICM-only counts (mock)
    "xray_observed",  # a real image reprojected to the model grid
    "exposure",  # exposure map [s]
    "background",  # background model [counts/pixel]
    "mask",  # footprint / point-source mask
    "galaxies",  # member + interloper galaxy table (npz)
    "kde_cube",  # 64^3 KDE of (x, y, v_los)
    "saliency",  # attribution maps
    "weights",  # network weights (torch state dicts)
    "raw_file",  # an ingested source file, kept byte-for-byte
)
MODEL_KINDS = ("single", "multi", "multimodal")
FOLD_SCHEMES = ("octant", "snapshot", "none")
RUN_STATUSES = ("pending", "running", "done", "failed")
SCATTER_AXES = ("all", "mass", "z")
ATTRIBUTION_METHODS = ("saliency", "integrated_gradients", "smoothgrad")
INGEST_STATUSES = ("ingested", "partial", "rejected")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable Alembic diffs)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONB, list[int]: ARRAY(Integer)}


def _created() -> Mapped[dt.datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="Row creation time (UTC)"
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
        info={"unit": "dex(solMass)"},
        comment="log10 M500c [h^-1 Msun]: truth (mocks) or catalogue value converted to M500c",
    )
    log10_m500c_err: Mapped[float | None] = mapped_column(
        Float, info={"unit": "dex"}, comment="1-sigma uncertainty of log10_m500c [dex]"
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
    """A scalar mass proxy of one cluster (T, L_X, M_gas, N_gal, sigma_v, N_phot, ...)."""

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


class ModelRun(Base):
    """A training run of one network kind over a catalogue, with all folds."""

    __tablename__ = "model_runs"
    __table_args__ = (
        CheckConstraint(_in("kind", MODEL_KINDS), name="kind"),
        CheckConstraint(_in("fold_scheme", FOLD_SCHEMES), name="fold_scheme"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        {"comment": "Training runs: config, provenance, status and metrics"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_key: Mapped[str] = mapped_column(
        String(64), unique=True, comment="sha256 of the canonical config (natural key)"
    )
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    kind: Mapped[str] = mapped_column(String(16), comment="'single', 'multi' or 'multimodal'")
    catalogue_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalogues.id", ondelete="SET NULL"), comment="Training catalogue"
    )
    config: Mapped[dict[str, Any]] = mapped_column(comment="Full training config (as run)")
    seed: Mapped[int] = mapped_column(BigInteger)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    package_versions: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    fold_scheme: Mapped[str] = mapped_column(String(16), comment="'octant', 'snapshot' or 'none'")
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _created()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    folds: Mapped[list[ModelRunFold]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class ModelRunFold(Base):
    """One cross-validation fold of a run: its weights, normalisation and metrics."""

    __tablename__ = "model_run_folds"
    __table_args__ = (
        UniqueConstraint("run_id", "fold"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        {"comment": "Per-fold training state; one Celery gpu task each"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"))
    fold: Mapped[int] = mapped_column(Integer, comment="Held-out fold index")
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    weights_product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL")
    )
    preprocessing: Mapped[dict[str, Any]] = mapped_column(
        default=dict,
        server_default="{}",
        comment="Training-fold statistics (z-normalisation fit, mean/std, target range)",
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    n_train: Mapped[int | None] = mapped_column(Integer)
    n_val: Mapped[int | None] = mapped_column(Integer)
    n_test: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    run: Mapped[ModelRun] = relationship(back_populates="folds")


class Prediction(Base):
    """A network's mass estimate for one cluster (out-of-fold for mocks)."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("run_id", "cluster_id"),
        Index("ix_predictions_cluster_id", "cluster_id"),
        # Covering indexes of the binned results functions (docs/sql.md): each bin of a run is
        # one index-only range scan (no join with clusters, no sort of the whole run).
        # cluster_id is included because PostgreSQL 15 still wants the column of a join it has
        # removed (v_residuals' LEFT JOIN clusters) before it allows an index-only scan.
        Index(
            "ix_predictions_run_mass",
            "run_id",
            "cluster_log10_m500c",
            postgresql_include=[
                "input_domain",
                "cluster_redshift",
                "log10_m500c_pred",
                "cluster_id",
            ],
        ),
        Index(
            "ix_predictions_run_redshift",
            "run_id",
            "cluster_redshift",
            postgresql_include=[
                "input_domain",
                "cluster_log10_m500c",
                "log10_m500c_pred",
                "cluster_id",
            ],
        ),
        {"comment": "Mass estimates per run and cluster"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    fold: Mapped[int | None] = mapped_column(
        Integer, comment="Fold whose model predicted it (held out); NULL = fold ensemble"
    )
    log10_m500c_pred: Mapped[float] = mapped_column(
        Float, info={"unit": "dex(solMass)"}, comment="Predicted log10 M500c [h^-1 Msun]"
    )
    log10_m500c_pred_err: Mapped[float | None] = mapped_column(
        Float, info={"unit": "dex"}, comment="Predicted 1-sigma uncertainty [dex], if any"
    )
    input_domain: Mapped[str] = mapped_column(
        String(16),
        default="mock",
        server_default="mock",
        comment="'mock' or 'observed' (observed inputs are out of the training domain)",
    )
    instrument: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # Copies of the cluster's mass and redshift, maintained by database triggers (revision
    # 0002): never written by clients. They let the results functions bin and difference a run's
    # predictions from one covering index, without a join (docs/sql.md, "Performance").
    cluster_log10_m500c: Mapped[float | None] = mapped_column(
        Float,
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
        info={"unit": "dex(solMass)"},
        comment="Copy of clusters.log10_m500c [h^-1 Msun], kept by trigger (do not write)",
    )
    cluster_redshift: Mapped[float | None] = mapped_column(
        Float,
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
        info={"unit": ""},
        comment="Copy of clusters.redshift, kept by trigger (do not write)",
    )
    created_at: Mapped[dt.datetime] = _created()


class Attribution(Base):
    """Summary of an attribution map (saliency etc.) of one cluster under one run."""

    __tablename__ = "attributions"
    __table_args__ = (
        UniqueConstraint("run_id", "cluster_id", "method"),
        CheckConstraint(_in("method", ATTRIBUTION_METHODS), name="method"),
        {"comment": "Attribution summaries; the maps themselves are products"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    r_core_over_r500c: Mapped[float | None] = mapped_column(
        Float, info={"unit": ""}, comment="Radius where proxy weight / saliency = 10, in R500c"
    )
    median_saliency_agn: Mapped[float | None] = mapped_column(Float)
    median_saliency_icm: Mapped[float | None] = mapped_column(Float)
    band_fractions: Mapped[list[float] | None] = mapped_column(
        ARRAY(Float), comment="Fraction of total saliency per energy band"
    )
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = _created()


class ClusterMatch(Base):
    """A sky cross-match between two clusters of different catalogues."""

    __tablename__ = "cluster_matches"
    __table_args__ = (
        UniqueConstraint("cluster_id_a", "cluster_id_b"),
        CheckConstraint("cluster_id_a <> cluster_id_b", name="distinct"),
        {"comment": "Sky cross-matches with separation and redshift difference"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id_a: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    cluster_id_b: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    separation_arcsec: Mapped[float] = mapped_column(Float, info={"unit": "arcsec"})
    delta_z: Mapped[float] = mapped_column(Float, info={"unit": ""}, comment="|z_a - z_b|")
    method: Mapped[str] = mapped_column(String(64), default="", server_default="")


class IngestFile(Base):
    """A source file seen by an ingester, identified by its checksum (idempotent ingestion)."""

    __tablename__ = "ingest_files"
    __table_args__ = (
        CheckConstraint(_in("status", INGEST_STATUSES), name="status"),
        {"comment": "Files ingested (or refused), keyed by sha256"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32), comment="'catalogue', 'image', 'galaxies', ...")
    size_bytes: Mapped[int] = mapped_column(BigInteger, info={"unit": "byte"})
    status: Mapped[str] = mapped_column(String(16))
    n_rows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    n_rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    catalogue_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalogues.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = _created()


class IngestReject(Base):
    """A row (or field) of an ingested file that was skipped, and why."""

    __tablename__ = "ingest_rejects"
    __table_args__ = ({"comment": "Per-row rejects of ingestion, with the reason"},)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_files.id", ondelete="CASCADE"), index=True
    )
    row_index: Mapped[int | None] = mapped_column(Integer, comment="0-based row in the file")
    column_name: Mapped[str | None] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


# The results tables (proxy mass estimates, bootstrap intervals) live in their own module. It is
# imported here so that they are always on Base.metadata (Alembic, tests), and re-exported lazily
# (``tables.ProxyEstimate``) so that importing either module first works.
from db import tables_results as _tables_results  # noqa: E402

_RESULTS_TABLES = ("ProxyEstimate", "ScatterBootstrap")


def __getattr__(name: str) -> Any:
    if name in _RESULTS_TABLES:
        return getattr(_tables_results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
