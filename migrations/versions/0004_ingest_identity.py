"""ingest identity: file + spec + options, one provenance row per ingestion, superseded rows

Revision ID: 0004_ingest_identity
Revises: 0003_reader_lockdown
Create Date: 2026-11-29 15:00:00

``ingest_files`` was keyed by the file's sha256 alone: a corrected spec or another method
answered "already ingested", and another catalogue read from the same file re-pointed the one
row. Now:

* ``ingest_key`` (unique, the natural key) = sha256 of the file checksum, the spec's content
  and the options that change the result; existing rows get their old key (their sha256), so
  the first ingestion after the upgrade re-ingests once, idempotently;
* ``sha256`` (the file's checksum) is no longer unique (indexed);
* ``target`` (what the ingestion writes, ``catalogue:<name>``...) and ``options`` (the identity
  inputs, for provenance); status ``superseded`` marks an ingestion a newer one replaced.

Downgrade keeps the newest row per file checksum (the others are deleted with their rejects)
and restores the unique sha256.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_ingest_identity"
down_revision: str | Sequence[str] | None = "0003_reader_lockdown"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ingest_files",
        sa.Column(
            "ingest_key",
            sa.String(length=64),
            nullable=True,
            comment="sha256 of (file sha256, spec content, result-changing options): natural key",
        ),
    )
    op.execute("UPDATE ingest_files SET ingest_key = sha256")
    op.alter_column("ingest_files", "ingest_key", nullable=False)
    op.add_column(
        "ingest_files",
        sa.Column(
            "target",
            sa.String(length=300),
            nullable=True,
            comment="What it writes, e.g. 'catalogue:MCXC' (NULL: refusals)",
        ),
    )
    op.add_column(
        "ingest_files",
        sa.Column(
            "options",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
            comment="The identity inputs besides the file: spec name and digest, method options",
        ),
    )
    op.execute(
        "UPDATE ingest_files f SET target = 'catalogue:' || c.name FROM catalogues c "
        "WHERE c.id = f.catalogue_id AND f.kind = 'catalogue' AND f.status <> 'rejected'"
    )
    op.alter_column(
        "ingest_files", "sha256", comment="sha256 of the file", existing_type=sa.String(64)
    )
    op.drop_constraint(op.f("uq_ingest_files_sha256"), "ingest_files", type_="unique")
    op.create_unique_constraint(op.f("uq_ingest_files_ingest_key"), "ingest_files", ["ingest_key"])
    op.create_index(op.f("ix_ingest_files_sha256"), "ingest_files", ["sha256"], unique=False)
    op.create_index(op.f("ix_ingest_files_target"), "ingest_files", ["target"], unique=False)
    op.drop_constraint(op.f("ck_ingest_files_status"), "ingest_files", type_="check")
    op.create_check_constraint(
        op.f("ck_ingest_files_status"),
        "ingest_files",
        "status IN ('ingested', 'partial', 'rejected', 'superseded')",
    )
    op.execute(
        "COMMENT ON TABLE ingest_files IS "
        "'Ingestions of files (or refusals), keyed by file + spec + options'"
    )


def downgrade() -> None:
    op.execute(
        "DELETE FROM ingest_files f USING ingest_files g WHERE g.sha256 = f.sha256 AND g.id > f.id"
    )
    op.execute("UPDATE ingest_files SET status = 'ingested' WHERE status = 'superseded'")
    op.drop_constraint(op.f("ck_ingest_files_status"), "ingest_files", type_="check")
    op.create_check_constraint(
        op.f("ck_ingest_files_status"),
        "ingest_files",
        "status IN ('ingested', 'partial', 'rejected')",
    )
    op.drop_index(op.f("ix_ingest_files_target"), table_name="ingest_files")
    op.drop_index(op.f("ix_ingest_files_sha256"), table_name="ingest_files")
    op.drop_constraint(op.f("uq_ingest_files_ingest_key"), "ingest_files", type_="unique")
    op.create_unique_constraint(op.f("uq_ingest_files_sha256"), "ingest_files", ["sha256"])
    op.alter_column("ingest_files", "sha256", comment=None, existing_type=sa.String(64))
    op.drop_column("ingest_files", "options")
    op.drop_column("ingest_files", "target")
    op.drop_column("ingest_files", "ingest_key")
    op.execute("COMMENT ON TABLE ingest_files IS 'Files ingested (or refused), keyed by sha256'")
