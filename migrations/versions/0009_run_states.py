"""run states: 'cancelled' runs and folds, and the heartbeat of the flow driving a run

Revision ID: 0009_run_states
Revises: 0005
Create Date: 2026-11-29 17:30:00

Issue 16 (no silent hangs): a cancelled run (Ctrl-C, a Prefect cancel) is marked ``cancelled``
instead of staying ``running`` forever; ``model_runs.heartbeat_at`` is refreshed by the flow
that drives the run, so a run left ``running`` by a dead process is detected
(``clustermass runs recover``) and resumed fold by fold (``clustermass fit --resume RUN``).
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0009_run_states'
down_revision: str | Sequence[str] | None = '0008_observed_corrections'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('pending', 'running', 'done', 'failed')"
_NEW = "status IN ('pending', 'running', 'done', 'failed', 'cancelled')"


def _recheck(table: str, condition: str) -> None:
    op.drop_constraint(op.f(f'ck_{table}_status'), table, type_='check')
    op.create_check_constraint(op.f(f'ck_{table}_status'), table, condition)


def upgrade() -> None:
    for table in ('model_runs', 'model_run_folds'):
        _recheck(table, _NEW)
    op.add_column('model_runs', sa.Column(
        'heartbeat_at', sa.DateTime(timezone=True), nullable=True,
        comment="Last heartbeat of the flow driving the run (UTC); stale while 'running' = the "
        "flow's process died (clustermass runs recover)",
    ))


def downgrade() -> None:
    op.drop_column('model_runs', 'heartbeat_at')
    for table in ('model_runs', 'model_run_folds'):
        op.execute(sa.text(f"UPDATE {table} SET status = 'failed' WHERE status = 'cancelled'"))
        _recheck(table, _OLD)
