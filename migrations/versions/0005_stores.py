"""stores: the file stores (data directories) a database's products were written to

Revision ID: 0005
Revises: 0004_ingest_identity
Create Date: 2026-11-29 15:00:00

Issue 15 (database and file store diverge): products hold paths relative to a store; this
table records which store(s) they were written to, so that a process pointed at another store
is told where the files are (``clustermass db verify``, and the error of a missing product file).
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004_ingest_identity'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stores',
    sa.Column('path', sa.Text(), nullable=False, comment="Absolute path of the store's root, as the writer saw it"),
    sa.Column('host', sa.String(length=255), server_default='', nullable=False, comment='Host name of the last writer'),
    sa.Column('first_used_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='First write (UTC)'),
    sa.Column('last_used_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Latest write (UTC)'),
    sa.PrimaryKeyConstraint('path', name=op.f('pk_stores')),
    comment="File stores (data directories) this database's products were written to"
    )


def downgrade() -> None:
    op.drop_table('stores')
