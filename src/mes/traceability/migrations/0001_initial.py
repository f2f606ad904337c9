"""initial

Revision ID: ac8df1e44372
Revises: <base>
Create Date: 2026-12-06T12:43:57+00:00
Service: traceability
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import framework_tables, timeouts

revision = 'ac8df1e44372'
down_revision = None
branch_labels = None
depends_on = None
# A revision that cannot be undone says why here; `isles migrate down` then refuses it:
# irreversible = "drops data that cannot be restored"
# A revision that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) runs on its own with:
# transactional = False


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    framework_tables.upgrade(op)
    op.create_table('trace_consumptions',
    sa.Column('consumption_id', sa.String(length=64), nullable=False),
    sa.Column('node_id', sa.BigInteger(), nullable=False),
    sa.Column('work_order_key', sa.Integer(), nullable=False),
    sa.Column('serial_node_id', sa.BigInteger(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=True),
    sa.Column('operation_code', sa.String(length=64), nullable=True),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('consumption_id'),
    info={'isles_read_model': True}
    )
    op.create_index('idx_trace_consumptions_node_id', 'trace_consumptions', ['node_id'], unique=False)
    op.create_index('idx_trace_consumptions_work_order_key', 'trace_consumptions', ['work_order_key'], unique=False)
    op.create_table('trace_edges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=False),
    sa.Column('child_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=True),
    sa.Column('work_order_key', sa.Integer(), nullable=True),
    sa.Column('operation_code', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    info={'isles_read_model': True}
    )
    op.create_index('idx_trace_edges_child_id_parent_id', 'trace_edges', ['child_id', 'parent_id'], unique=False)
    op.create_index('idx_trace_edges_parent_id_child_id', 'trace_edges', ['parent_id', 'child_id'], unique=False)
    op.create_table('trace_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('node_id', sa.BigInteger(), nullable=True),
    sa.Column('work_order_key', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    info={'isles_read_model': True}
    )
    op.create_index('idx_trace_events_node_id_occurred_at', 'trace_events', ['node_id', 'occurred_at'], unique=False)
    op.create_index('idx_trace_events_work_order_key_occurred_at', 'trace_events',
                    ['work_order_key', 'occurred_at'], unique=False)
    op.create_table('trace_nodes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.SmallInteger(), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=128), nullable=True),
    sa.Column('part_key', sa.Integer(), nullable=True),
    sa.Column('work_order_key', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=True),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('supplier', sa.String(length=255), nullable=True),
    sa.Column('supplier_lot_number', sa.String(length=128), nullable=True),
    sa.Column('customer', sa.String(length=255), nullable=True),
    sa.Column('inherits', sa.Boolean(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    info={'isles_read_model': True}
    )
    op.create_index('idx_trace_nodes_entity_id_kind', 'trace_nodes', ['entity_id', 'kind'], unique=True)
    op.create_index('idx_trace_nodes_number', 'trace_nodes', ['number'], unique=False)
    op.create_table('trace_parts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('part_id', sa.String(length=64), nullable=False),
    sa.Column('part_number', sa.String(length=64), nullable=True),
    sa.Column('part_name', sa.String(length=255), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    info={'isles_read_model': True}
    )
    op.create_index('idx_trace_parts_part_id', 'trace_parts', ['part_id'], unique=True)
    op.create_table('trace_work_orders',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('work_order_id', sa.String(length=64), nullable=False),
    sa.Column('work_order_number', sa.String(length=64), nullable=True),
    sa.Column('part_id', sa.String(length=64), nullable=True),
    sa.Column('part_number', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    info={'isles_read_model': True}
    )
    op.create_index('idx_trace_work_orders_work_order_id', 'trace_work_orders', ['work_order_id'], unique=True)


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_trace_work_orders_work_order_id', table_name='trace_work_orders')
    op.drop_table('trace_work_orders')
    op.drop_index('idx_trace_parts_part_id', table_name='trace_parts')
    op.drop_table('trace_parts')
    op.drop_index('idx_trace_nodes_number', table_name='trace_nodes')
    op.drop_index('idx_trace_nodes_entity_id_kind', table_name='trace_nodes')
    op.drop_table('trace_nodes')
    op.drop_index('idx_trace_events_work_order_key_occurred_at', table_name='trace_events')
    op.drop_index('idx_trace_events_node_id_occurred_at', table_name='trace_events')
    op.drop_table('trace_events')
    op.drop_index('idx_trace_edges_parent_id_child_id', table_name='trace_edges')
    op.drop_index('idx_trace_edges_child_id_parent_id', table_name='trace_edges')
    op.drop_table('trace_edges')
    op.drop_index('idx_trace_consumptions_work_order_key', table_name='trace_consumptions')
    op.drop_index('idx_trace_consumptions_node_id', table_name='trace_consumptions')
    op.drop_table('trace_consumptions')
    framework_tables.downgrade(op)
