"""The mass catalogue (revision 0007): match sets, cluster names and mass estimates.

* :class:`MatchSet` - one cross-match of two catalogues with given parameters; its pairs are
  ``cluster_matches`` rows. Re-running the same parameters replaces the set's pairs (one
  transaction); other parameters make another set. The *latest* set of a pair of catalogues
  (newest ``computed_at``) is what the views use (docs/sql.md, "The mass catalogue").
* :class:`ClusterName` - every name a catalogue gives a cluster (each name column, the
  identifier, an IAU-style name for coordinate targets), with a search key
  (SQL function ``cm_name_key``: lower case, no spaces or underscores, ``Abell``/``ACO``
  before a number -> ``A``).
* :class:`MassEstimate` - a mass estimate of one cluster that is neither the catalogue's own
  value (``clusters.log10_m500c``) nor a network prediction (``predictions``), keyed by
  (cluster, method, source): a dynamical mass per member table and interloper method, with its
  diagnostics and flags. A second member table adds a row; it never overwrites the first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from db.tables.base import Base, _created

__all__ = ["MatchSet", "ClusterName", "MassEstimate"]


class MatchSet(Base):
    """A named, versioned cross-match: catalogue A x catalogue B under one set of parameters."""

    __tablename__ = "match_sets"
    __table_args__ = (
        UniqueConstraint("catalogue_id_a", "catalogue_id_b", "params_key"),
        CheckConstraint("catalogue_id_a <> catalogue_id_b", name="distinct"),
        {"comment": "Cross-match runs of two catalogues, one per parameter set (versioned)"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(
        String(300), comment="e.g. 'mcxc x spiders_codex [sep<=180\", |dz|<=0.05]'"
    )
    catalogue_id_a: Mapped[int] = mapped_column(
        ForeignKey("catalogues.id", ondelete="CASCADE"), comment="Catalogue matched from"
    )
    catalogue_id_b: Mapped[int] = mapped_column(
        ForeignKey("catalogues.id", ondelete="CASCADE"), comment="Catalogue matched to"
    )
    params: Mapped[dict[str, Any]] = mapped_column(
        comment="Match parameters: max_sep_arcsec, max_dz, relative_dz"
    )
    params_key: Mapped[str] = mapped_column(
        String(64), comment="sha256 of the canonical JSON of params (natural key with the pair)"
    )
    method: Mapped[str] = mapped_column(Text, default="", server_default="")
    n_matches: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = _created()
    computed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True),
        server_default=func.now(),
        comment="Last time the set was (re)computed (UTC): the newest set of a pair is the latest",
    )


class ClusterName(Base):
    """One name or alias of a cluster, with its case- and spacing-insensitive search key."""

    __tablename__ = "cluster_names"
    __table_args__ = (
        UniqueConstraint("cluster_id", "name_key"),
        Index("ix_cluster_names_name_key", "name_key"),
        {"comment": "Names and aliases of clusters (every name column of the catalogue spec)"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), comment="The name as the source writes it")
    name_key: Mapped[str] = mapped_column(
        String(200), comment="cm_name_key(name): the search key (lower case, no spaces, A<n>)"
    )
    source: Mapped[str] = mapped_column(
        String(100), comment="Where it comes from: a column name, 'external_id' or 'iau'"
    )


class MassEstimate(Base):
    """A mass estimate with provenance: (cluster, method, source) is the natural key."""

    __tablename__ = "mass_estimates"
    __table_args__ = (
        UniqueConstraint("cluster_id", "method", "source"),
        CheckConstraint("n_members IS NULL OR n_members >= 0", name="n_members"),
        {"comment": "Mass estimates per cluster, method and source (e.g. dynamical masses)"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(
        String(64), comment="e.g. 'dynamical:shifting_gapper' (estimator and interloper method)"
    )
    source: Mapped[str] = mapped_column(
        String(300), comment="What it was computed from, e.g. 'galaxies:observed/coma.csv'"
    )
    log10_m500c: Mapped[float | None] = mapped_column(
        Float, info={"unit": "dex(solMass / littleh)"}, comment="log10 M500c [h^-1 Msun]"
    )
    log10_m500c_err: Mapped[float | None] = mapped_column(
        Float, info={"unit": "dex"}, comment="1-sigma uncertainty [dex]"
    )
    n_members: Mapped[int | None] = mapped_column(Integer, comment="Members used (dynamical)")
    interlopers: Mapped[str | None] = mapped_column(
        String(32), comment="Interloper removal used (dynamical)"
    )
    flags: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)),
        default=list,
        server_default="{}",
        comment="Warnings: 'truncated_velocities', 'few_members', ...",
    )
    details: Mapped[dict[str, Any]] = mapped_column(
        default=dict,
        server_default="{}",
        comment="Diagnostics: dispersions [km/s], M200c, notes, file sha256, ingest file id",
    )
    file_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_files.id", ondelete="SET NULL"), comment="Ingestion that made it"
    )
    created_at: Mapped[dt.datetime] = _created()
