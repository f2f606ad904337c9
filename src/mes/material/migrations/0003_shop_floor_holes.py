"""shop floor holes: merge sources, over-issue reasons, the order quantity and operations

Revision ID: c4a9e1f0b7d2
Revises: 8b4e2d7c1a90
Create Date: 2026-12-06T12:00:00+00:00
Service: material
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import timeouts

revision = 'c4a9e1f0b7d2'
down_revision = '8b4e2d7c1a90'
branch_labels = None
depends_on = None


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.create_table('lot_merge_sources',
    sa.Column('merged_lot_id', sa.Uuid(), nullable=False),
    sa.Column('source_lot_id', sa.Uuid(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('supplier', sa.String(length=255), nullable=True),
    sa.Column('supplier_lot_number', sa.String(length=64), nullable=True),
    sa.Column('certificate_number', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['merged_lot_id'], ['material_lots.id'], ),
    sa.ForeignKeyConstraint(['source_lot_id'], ['material_lots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_lot_merge_sources_merged_lot_id', 'lot_merge_sources', ['merged_lot_id'], unique=False)
    op.create_index('idx_lot_merge_sources_source_lot_id', 'lot_merge_sources', ['source_lot_id'], unique=False)
    op.add_column('consumptions', sa.Column('reason', sa.String(length=500), nullable=True))
    op.add_column('replicated_work_orders', sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=True))
    op.add_column('replicated_work_orders', sa.Column('operation_codes', sa.JSON(), nullable=True))


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    with op.batch_alter_table('replicated_work_orders') as batch:
        batch.drop_column('operation_codes')
        batch.drop_column('quantity')
    with op.batch_alter_table('consumptions') as batch:
        batch.drop_column('reason')
    op.drop_index('idx_lot_merge_sources_source_lot_id', table_name='lot_merge_sources')
    op.drop_index('idx_lot_merge_sources_merged_lot_id', table_name='lot_merge_sources')
    op.drop_table('lot_merge_sources')
