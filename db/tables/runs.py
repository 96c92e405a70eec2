"""Training runs, their folds, predictions and attribution summaries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.tables.base import (
    ATTRIBUTION_METHODS,
    FOLD_SCHEMES,
    MODEL_KINDS,
    RUN_STATUSES,
    Base,
    _created,
    _in,
)


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
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="Last heartbeat of the flow driving the run (UTC); stale while 'running' = the "
        "flow's process died (clustermass runs recover)",
    )

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
        # one index-only range scan (no join with clusters, no sort of the whole run; the
        # catalogue and the stored residual are read from the index, revision 0010).
        # cluster_id is included because PostgreSQL 15 still wants the column of a join it has
        # removed (v_residuals' LEFT JOIN clusters) before it allows an index-only scan.
        Index(
            "ix_predictions_run_mass",
            "run_id",
            "cluster_log10_m500c",
            postgresql_include=[
                "input_domain",
                "cluster_catalogue_id",
                "cluster_redshift",
                "residual_dex",
                "cluster_id",
            ],
        ),
        Index(
            "ix_predictions_run_redshift",
            "run_id",
            "cluster_redshift",
            postgresql_include=[
                "input_domain",
                "cluster_catalogue_id",
                "cluster_log10_m500c",
                "residual_dex",
                "cluster_id",
            ],
        ),
        # The scatter index's percentile step (revision 0011): the predictions of one residual
        # cell of a bin, read in residual order from the index alone.
        Index(
            "ix_predictions_run_residual",
            "run_id",
            "residual_dex",
            postgresql_include=[
                "input_domain",
                "cluster_catalogue_id",
                "cluster_log10_m500c",
                "cluster_redshift",
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
        Float, info={"unit": "dex(solMass / littleh)"}, comment="Predicted log10 M500c [h^-1 Msun]"
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
    count_rate_scale: Mapped[float | None] = mapped_column(
        Float,
        comment="Observed: counts multiplied by this effective-area/band ratio to the training "
        "instrument (NULL: none applied)",
    )
    log10_m500c_pred_uncorrected: Mapped[float | None] = mapped_column(
        Float,
        info={"unit": "dex(solMass / littleh)"},
        comment="Observed: the prediction without the count-rate correction [h^-1 Msun]",
    )
    # Copies of the cluster's mass and redshift, maintained by database triggers (revision
    # 0002): never written by clients. They let the results functions bin and difference a run's
    # predictions from one covering index, without a join (docs/sql.md, "Performance").
    cluster_log10_m500c: Mapped[float | None] = mapped_column(
        Float,
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
        info={"unit": "dex(solMass / littleh)"},
        comment="Copy of clusters.log10_m500c [h^-1 Msun], kept by trigger (do not write)",
    )
    cluster_redshift: Mapped[float | None] = mapped_column(
        Float,
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
        info={"unit": ""},
        comment="Copy of clusters.redshift, kept by trigger (do not write)",
    )
    cluster_catalogue_id: Mapped[int | None] = mapped_column(
        Integer,
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
        comment="Copy of clusters.catalogue_id, kept by trigger (do not write)",
    )
    # Generated by PostgreSQL (revision 0010): what the binned functions aggregate.
    residual_dex: Mapped[float | None] = mapped_column(
        Float,
        Computed("log10_m500c_pred - cluster_log10_m500c", persisted=True),
        info={"unit": "dex"},
        comment="log10_m500c_pred - cluster_log10_m500c [dex] (generated)",
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
