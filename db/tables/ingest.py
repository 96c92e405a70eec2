"""Ingest provenance: files, rejected rows and cross-matches between catalogues."""

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
from sqlalchemy.orm import Mapped, mapped_column

from db.tables.base import (
    INGEST_STATUSES,
    Base,
    _created,
    _in,
)


class ClusterMatch(Base):
    """A sky cross-match between two clusters of different catalogues, in one match set."""

    __tablename__ = "cluster_matches"
    __table_args__ = (
        UniqueConstraint("match_set_id", "cluster_id_a", "cluster_id_b"),
        Index("ix_cluster_matches_cluster_id_b", "cluster_id_b"),
        CheckConstraint("cluster_id_a <> cluster_id_b", name="distinct"),
        {"comment": "Sky cross-matches with separation and redshift difference"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_set_id: Mapped[int] = mapped_column(
        ForeignKey("match_sets.id", ondelete="CASCADE"), comment="The cross-match run it belongs to"
    )
    cluster_id_a: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    cluster_id_b: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    separation_arcsec: Mapped[float] = mapped_column(Float, info={"unit": "arcsec"})
    delta_z: Mapped[float] = mapped_column(Float, info={"unit": ""}, comment="|z_a - z_b|")
    method: Mapped[str] = mapped_column(String(64), default="", server_default="")


class IngestFile(Base):
    """One ingestion of a source file: its natural key is what decides the result.

    ``ingest_key`` = sha256 of the file's checksum, the spec's content and the options that
    change the result (:func:`db.survey.ingest_key`): the same file read with another spec
    (another catalogue name, a corrected mapping) or another method is another ingestion, with
    its own row. ``target`` names what the ingestion writes (``catalogue:<name>``,
    ``galaxies:<cluster id>:<label>``); a newer ingestion of the same target marks the older
    rows ``superseded``.
    """

    __tablename__ = "ingest_files"
    __table_args__ = (
        CheckConstraint(_in("status", INGEST_STATUSES), name="status"),
        {"comment": "Ingestions of files (or refusals), keyed by file + spec + options"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ingest_key: Mapped[str] = mapped_column(
        String(64),
        unique=True,
        comment="sha256 of (file sha256, spec content, result-changing options): natural key",
    )
    sha256: Mapped[str] = mapped_column(String(64), index=True, comment="sha256 of the file")
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32), comment="'catalogue', 'image', 'galaxies', ...")
    target: Mapped[str | None] = mapped_column(
        String(300), index=True, comment="What it writes, e.g. 'catalogue:MCXC' (NULL: refusals)"
    )
    options: Mapped[dict[str, Any]] = mapped_column(
        default=dict,
        server_default="{}",
        comment="The identity inputs besides the file: spec name and digest, method options",
    )
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
    row_index: Mapped[int | None] = mapped_column(
        Integer, comment="1-based data row (the first row after the header is 1)"
    )
    line_number: Mapped[int | None] = mapped_column(
        Integer,
        comment="Text tables: 1-based file line the row starts on (what an editor shows)",
    )
    column_name: Mapped[str | None] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
