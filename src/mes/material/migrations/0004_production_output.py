"""production output: receipts, genealogy, consumption reversals, shipments, returns

Revision ID: 7e994a3d624b
Revises: c4a9e1f0b7d2
Create Date: 2026-12-06T12:39:32+00:00
Service: material
"""
import sqlalchemy as sa
from alembic import op

from isles import sequences
from isles.migrations import timeouts

revision = '7e994a3d624b'
down_revision = 'c4a9e1f0b7d2'
branch_labels = None
depends_on = None
# A revision that cannot be undone says why here; `isles migrate down` then refuses it:
# irreversible = "drops data that cannot be restored"
# A revision that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) runs on its own with:
# transactional = False


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    sequences.create(op, "shipment_number")
    sequences.create(op, "return_number")
    op.create_table('shipments',
    sa.Column('shipment_number', sa.String(length=64), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=False),
    sa.Column('customer_order', sa.String(length=64), nullable=True),
    sa.Column('shipped_by', sa.String(length=36), nullable=True),
    sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_shipments_customer', 'shipments', ['customer'], unique=False)
    op.create_index('idx_shipments_shipment_number', 'shipments', ['shipment_number'], unique=True)
    op.create_table('customer_returns',
    sa.Column('return_number', sa.String(length=64), nullable=False),
    sa.Column('shipment_id', sa.Uuid(), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('received_by', sa.String(length=36), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_customer_returns_return_number', 'customer_returns', ['return_number'], unique=True)
    op.create_index('idx_customer_returns_shipment_id', 'customer_returns', ['shipment_id'], unique=False)
    op.create_table('production_receipts',
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('corrects_report_id', sa.Uuid(), nullable=True),
    sa.Column('work_order_id', sa.Uuid(), nullable=False),
    sa.Column('work_order_number', sa.String(length=64), nullable=False),
    sa.Column('operation_code', sa.String(length=64), nullable=True),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('reported_by', sa.String(length=36), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['material_lots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_production_receipts_lot_id', 'production_receipts', ['lot_id'], unique=False)
    op.create_index('idx_production_receipts_corrects_report_id', 'production_receipts',
                    ['corrects_report_id'], unique=False)
    op.create_index('idx_production_receipts_report_id', 'production_receipts', ['report_id'], unique=True)
    op.create_index('idx_production_receipts_work_order_id', 'production_receipts', ['work_order_id'], unique=False)
    op.create_table('shipment_lines',
    sa.Column('shipment_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('serial_id', sa.Uuid(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['material_lots.id'], ),
    sa.ForeignKeyConstraint(['serial_id'], ['serialized_parts.id'], ),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_shipment_lines_lot_id', 'shipment_lines', ['lot_id'], unique=False)
    op.create_index('idx_shipment_lines_serial_id', 'shipment_lines', ['serial_id'], unique=False)
    op.create_index('idx_shipment_lines_shipment_id', 'shipment_lines', ['shipment_id'], unique=False)
    op.create_table('consumption_reversals',
    sa.Column('consumption_id', sa.Uuid(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('reversed_by', sa.String(length=36), nullable=True),
    sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['consumption_id'], ['consumptions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_consumption_reversals_consumption_id', 'consumption_reversals',
                    ['consumption_id'], unique=False)
    op.create_table('lot_genealogy_edges',
    sa.Column('parent_lot_id', sa.Uuid(), nullable=False),
    sa.Column('child_lot_id', sa.Uuid(), nullable=False),
    sa.Column('child_serial_id', sa.Uuid(), nullable=True),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('work_order_id', sa.Uuid(), nullable=True),
    sa.Column('operation_code', sa.String(length=64), nullable=True),
    sa.Column('consumption_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['child_lot_id'], ['material_lots.id'], ),
    sa.ForeignKeyConstraint(['child_serial_id'], ['serialized_parts.id'], ),
    sa.ForeignKeyConstraint(['consumption_id'], ['consumptions.id'], ),
    sa.ForeignKeyConstraint(['parent_lot_id'], ['material_lots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_lot_genealogy_edges_child_lot_id', 'lot_genealogy_edges', ['child_lot_id'], unique=False)
    op.create_index('idx_lot_genealogy_edges_child_serial_id', 'lot_genealogy_edges', ['child_serial_id'], unique=False)
    op.create_index('idx_lot_genealogy_edges_consumption_id', 'lot_genealogy_edges', ['consumption_id'], unique=False)
    op.create_index('idx_lot_genealogy_edges_parent_lot_id', 'lot_genealogy_edges', ['parent_lot_id'], unique=False)
    op.create_index('idx_lot_genealogy_edges_work_order_id', 'lot_genealogy_edges', ['work_order_id'], unique=False)
    op.create_table('return_lines',
    sa.Column('return_id', sa.Uuid(), nullable=False),
    sa.Column('shipment_line_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('serial_id', sa.Uuid(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['material_lots.id'], ),
    sa.ForeignKeyConstraint(['return_id'], ['customer_returns.id'], ),
    sa.ForeignKeyConstraint(['serial_id'], ['serialized_parts.id'], ),
    sa.ForeignKeyConstraint(['shipment_line_id'], ['shipment_lines.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_return_lines_lot_id', 'return_lines', ['lot_id'], unique=False)
    op.create_index('idx_return_lines_serial_id', 'return_lines', ['serial_id'], unique=False)
    op.create_index('idx_return_lines_return_id', 'return_lines', ['return_id'], unique=False)
    op.create_index('idx_return_lines_shipment_line_id', 'return_lines', ['shipment_line_id'], unique=False)


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_return_lines_shipment_line_id', table_name='return_lines')
    op.drop_index('idx_return_lines_return_id', table_name='return_lines')
    op.drop_index('idx_return_lines_serial_id', table_name='return_lines')
    op.drop_index('idx_return_lines_lot_id', table_name='return_lines')
    op.drop_table('return_lines')
    op.drop_index('idx_lot_genealogy_edges_work_order_id', table_name='lot_genealogy_edges')
    op.drop_index('idx_lot_genealogy_edges_parent_lot_id', table_name='lot_genealogy_edges')
    op.drop_index('idx_lot_genealogy_edges_consumption_id', table_name='lot_genealogy_edges')
    op.drop_index('idx_lot_genealogy_edges_child_serial_id', table_name='lot_genealogy_edges')
    op.drop_index('idx_lot_genealogy_edges_child_lot_id', table_name='lot_genealogy_edges')
    op.drop_table('lot_genealogy_edges')
    op.drop_index('idx_consumption_reversals_consumption_id', table_name='consumption_reversals')
    op.drop_table('consumption_reversals')
    op.drop_index('idx_shipment_lines_shipment_id', table_name='shipment_lines')
    op.drop_index('idx_shipment_lines_serial_id', table_name='shipment_lines')
    op.drop_index('idx_shipment_lines_lot_id', table_name='shipment_lines')
    op.drop_table('shipment_lines')
    op.drop_index('idx_production_receipts_work_order_id', table_name='production_receipts')
    op.drop_index('idx_production_receipts_report_id', table_name='production_receipts')
    op.drop_index('idx_production_receipts_corrects_report_id', table_name='production_receipts')
    op.drop_index('idx_production_receipts_lot_id', table_name='production_receipts')
    op.drop_table('production_receipts')
    op.drop_index('idx_customer_returns_shipment_id', table_name='customer_returns')
    op.drop_index('idx_customer_returns_return_number', table_name='customer_returns')
    op.drop_table('customer_returns')
    op.drop_index('idx_shipments_shipment_number', table_name='shipments')
    op.drop_index('idx_shipments_customer', table_name='shipments')
    op.drop_table('shipments')
    sequences.drop(op, "return_number")
    sequences.drop(op, "shipment_number")
