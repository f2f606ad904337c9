"""production report counter-entries, reversed material actuals

Revision ID: a67ec44633a7
Revises: 5d2b8f3e9a41
Create Date: 2026-12-06T12:39:34+00:00
Service: work_order
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import timeouts

revision = 'a67ec44633a7'
down_revision = '5d2b8f3e9a41'
branch_labels = None
depends_on = None
# A revision that cannot be undone says why here; `isles migrate down` then refuses it:
# irreversible = "drops data that cannot be restored"
# A revision that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) runs on its own with:
# transactional = False


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.add_column('material_actuals', sa.Column('reverses_consumption_id', sa.Uuid(), nullable=True))
    op.add_column('material_actuals', sa.Column('reason', sa.String(length=500), nullable=True))
    op.add_column('performance_reports', sa.Column('corrects_report_id', sa.Uuid(), nullable=True))
    op.add_column('performance_reports', sa.Column('reason', sa.String(length=500), nullable=True))
    # isles: ignore[ISL204] verify cannot run autocommit_block yet; the build scans the table under a SHARE lock
    op.create_index('idx_performance_reports_corrects_report_id', 'performance_reports', ['corrects_report_id'])
    # isles: ignore[ISL204] verify cannot run autocommit_block yet; the build scans the table under a SHARE lock
    op.create_index('idx_material_actuals_reverses_consumption_id', 'material_actuals', ['reverses_consumption_id'])


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_material_actuals_reverses_consumption_id', table_name='material_actuals')
    op.drop_index('idx_performance_reports_corrects_report_id', table_name='performance_reports')
    op.drop_column('performance_reports', 'reason')
    op.drop_column('performance_reports', 'corrects_report_id')
    op.drop_column('material_actuals', 'reason')
    op.drop_column('material_actuals', 'reverses_consumption_id')
