"""observed corrections: asymmetric errors, reject line numbers, area-corrected predictions

Revision ID: 0008_observed_corrections
Revises: 0005
Create Date: 2026-11-29 18:00:00

Issue 17 (readers and observed predictions):

* ``clusters.log10_m500c_err_lo`` / ``_err_hi`` and ``observables.error_lo`` / ``error_hi``:
  asymmetric 1-sigma errors as the catalogue gives them (``log10_m500c_err`` and ``error`` stay
  the symmetric value, the mean of the two);
* ``ingest_rejects.row_index`` becomes 1-based (the first data row is 1; existing rows are
  shifted) and ``ingest_rejects.line_number`` gives, for text tables, the file line an editor
  shows;
* ``predictions.count_rate_scale`` and ``log10_m500c_pred_uncorrected``: an observed image from
  another instrument is rescaled by the effective-area and band ratio to the training
  instrument before prediction; the factor and the uncorrected prediction are kept.
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0008_observed_corrections'
down_revision: str | Sequence[str] | None = '0007_mass_catalogue'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('clusters', sa.Column('log10_m500c_err_lo', sa.Float(), nullable=True, comment='Lower 1-sigma uncertainty of log10_m500c [dex] (asymmetric errors)'))
    op.add_column('clusters', sa.Column('log10_m500c_err_hi', sa.Float(), nullable=True, comment='Upper 1-sigma uncertainty of log10_m500c [dex] (asymmetric errors)'))
    op.add_column('observables', sa.Column('error_lo', sa.Float(), nullable=True, comment='Lower 1-sigma error in `unit` (asymmetric errors)'))
    op.add_column('observables', sa.Column('error_hi', sa.Float(), nullable=True, comment='Upper 1-sigma error in `unit` (asymmetric errors)'))
    op.add_column('ingest_rejects', sa.Column('line_number', sa.Integer(), nullable=True, comment='Text tables: 1-based file line the row starts on (what an editor shows)'))
    op.execute('UPDATE ingest_rejects SET row_index = row_index + 1 WHERE row_index IS NOT NULL')
    op.alter_column('ingest_rejects', 'row_index', existing_type=sa.Integer(), comment='1-based data row (the first row after the header is 1)', existing_nullable=True)
    op.add_column('predictions', sa.Column('count_rate_scale', sa.Float(), nullable=True, comment='Observed: counts multiplied by this effective-area/band ratio to the training instrument (NULL: none applied)'))
    op.add_column('predictions', sa.Column('log10_m500c_pred_uncorrected', sa.Float(), nullable=True, comment='Observed: the prediction without the count-rate correction [h^-1 Msun]'))


def downgrade() -> None:
    op.drop_column('predictions', 'log10_m500c_pred_uncorrected')
    op.drop_column('predictions', 'count_rate_scale')
    op.alter_column('ingest_rejects', 'row_index', existing_type=sa.Integer(), comment='0-based row in the file', existing_nullable=True)
    op.execute('UPDATE ingest_rejects SET row_index = row_index - 1 WHERE row_index IS NOT NULL')
    op.drop_column('ingest_rejects', 'line_number')
    op.drop_column('observables', 'error_hi')
    op.drop_column('observables', 'error_lo')
    op.drop_column('clusters', 'log10_m500c_err_hi')
    op.drop_column('clusters', 'log10_m500c_err_lo')
