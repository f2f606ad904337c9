"""initial

Revision ID: ebe6dac5e242
Revises: <base>
Create Date: 2026-11-29T16:18:55+00:00
Service: material
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import framework_tables, timeouts

revision = 'ebe6dac5e242'
down_revision = None
branch_labels = None
depends_on = None
# A revision that cannot be undone says why here; `isles migrate down` then refuses it:
# irreversible = "drops data that cannot be restored"
# A revision that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) runs on its own with:
# transactional = False


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    framework_tables.upgrade(op)  # isles' outbox, inbox, dead letters (and API tokens): isles' own steps
    op.create_table('locations',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_locations_code', 'locations', ['code'], unique=True)
    op.create_index('idx_locations_site_id', 'locations', ['site_id'], unique=False)
    op.create_table('parts',
    sa.Column('part_number', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=False),
    sa.Column('tracking', sa.String(length=16), server_default='lot', nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_parts_part_number', 'parts', ['part_number'], unique=True)
    op.create_table('replicated_work_orders',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('work_order_number', sa.String(length=64), nullable=True),
    sa.Column('part_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_replicated_work_orders_part_id', 'replicated_work_orders', ['part_id'], unique=False)
    op.create_table('boms',
    sa.Column('part_id', sa.Uuid(), nullable=False),
    sa.Column('bom_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=36), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['part_id'], ['parts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_boms_part_id_bom_version', 'boms', ['part_id', 'bom_version'], unique=True)
    op.create_table('material_lots',
    sa.Column('lot_number', sa.String(length=64), nullable=False),
    sa.Column('part_id', sa.Uuid(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('initial_quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('location_id', sa.Uuid(), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('parent_lot_id', sa.Uuid(), nullable=True),
    sa.Column('supplier', sa.String(length=255), nullable=True),
    sa.Column('supplier_lot_number', sa.String(length=64), nullable=True),
    sa.Column('certificate_number', sa.String(length=64), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], ),
    sa.ForeignKeyConstraint(['parent_lot_id'], ['material_lots.id'], ),
    sa.ForeignKeyConstraint(['part_id'], ['parts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_material_lots_location_id', 'material_lots', ['location_id'], unique=False)
    op.create_index('idx_material_lots_lot_number', 'material_lots', ['lot_number'], unique=True)
    op.create_index('idx_material_lots_parent_lot_id', 'material_lots', ['parent_lot_id'], unique=False)
    op.create_index('idx_material_lots_part_id_status', 'material_lots', ['part_id', 'status'], unique=False)
    op.create_table('bom_items',
    sa.Column('bom_id', sa.Uuid(), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=False),
    sa.Column('component_part_id', sa.Uuid(), nullable=False),
    sa.Column('quantity_per', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=False),
    sa.Column('operation_code', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['bom_id'], ['boms.id'], ),
    sa.ForeignKeyConstraint(['component_part_id'], ['parts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_bom_items_bom_id_line_number', 'bom_items', ['bom_id', 'line_number'], unique=True)
    op.create_index('idx_bom_items_component_part_id', 'bom_items', ['component_part_id'], unique=False)
    op.create_table('material_sublots',
    sa.Column('sublot_number', sa.String(length=64), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('location_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], ),
    sa.ForeignKeyConstraint(['lot_id'], ['material_lots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_material_sublots_location_id', 'material_sublots', ['location_id'], unique=False)
    op.create_index('idx_material_sublots_lot_id', 'material_sublots', ['lot_id'], unique=False)
    op.create_index('idx_material_sublots_sublot_number', 'material_sublots', ['sublot_number'], unique=True)
    op.create_table('serialized_parts',
    sa.Column('part_id', sa.Uuid(), nullable=False),
    sa.Column('process_serial', sa.String(length=64), nullable=False),
    sa.Column('product_serial', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=True),
    sa.Column('work_order_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['material_lots.id'], ),
    sa.ForeignKeyConstraint(['part_id'], ['parts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_serialized_parts_lot_id', 'serialized_parts', ['lot_id'], unique=False)
    op.create_index('idx_serialized_parts_part_id_process_serial', 'serialized_parts',
                    ['part_id', 'process_serial'], unique=True)
    op.create_index('idx_serialized_parts_part_id_product_serial', 'serialized_parts',
                    ['part_id', 'product_serial'], unique=True)
    op.create_index('idx_serialized_parts_work_order_id', 'serialized_parts', ['work_order_id'], unique=False)
    op.create_table('consumptions',
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('sublot_id', sa.Uuid(), nullable=True),
    sa.Column('work_order_id', sa.Uuid(), nullable=False),
    sa.Column('operation_code', sa.String(length=64), nullable=True),
    sa.Column('serial_id', sa.Uuid(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=False),
    sa.Column('consumed_by', sa.String(length=36), nullable=True),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['material_lots.id'], ),
    sa.ForeignKeyConstraint(['serial_id'], ['serialized_parts.id'], ),
    sa.ForeignKeyConstraint(['sublot_id'], ['material_sublots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_consumptions_lot_id', 'consumptions', ['lot_id'], unique=False)
    op.create_index('idx_consumptions_serial_id', 'consumptions', ['serial_id'], unique=False)
    op.create_index('idx_consumptions_sublot_id', 'consumptions', ['sublot_id'], unique=False)
    op.create_index('idx_consumptions_work_order_id', 'consumptions', ['work_order_id'], unique=False)


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_consumptions_work_order_id', table_name='consumptions')
    op.drop_index('idx_consumptions_sublot_id', table_name='consumptions')
    op.drop_index('idx_consumptions_serial_id', table_name='consumptions')
    op.drop_index('idx_consumptions_lot_id', table_name='consumptions')
    op.drop_table('consumptions')
    op.drop_index('idx_serialized_parts_work_order_id', table_name='serialized_parts')
    op.drop_index('idx_serialized_parts_part_id_product_serial', table_name='serialized_parts')
    op.drop_index('idx_serialized_parts_part_id_process_serial', table_name='serialized_parts')
    op.drop_index('idx_serialized_parts_lot_id', table_name='serialized_parts')
    op.drop_table('serialized_parts')
    op.drop_index('idx_material_sublots_sublot_number', table_name='material_sublots')
    op.drop_index('idx_material_sublots_lot_id', table_name='material_sublots')
    op.drop_index('idx_material_sublots_location_id', table_name='material_sublots')
    op.drop_table('material_sublots')
    op.drop_index('idx_bom_items_component_part_id', table_name='bom_items')
    op.drop_index('idx_bom_items_bom_id_line_number', table_name='bom_items')
    op.drop_table('bom_items')
    op.drop_index('idx_material_lots_part_id_status', table_name='material_lots')
    op.drop_index('idx_material_lots_parent_lot_id', table_name='material_lots')
    op.drop_index('idx_material_lots_lot_number', table_name='material_lots')
    op.drop_index('idx_material_lots_location_id', table_name='material_lots')
    op.drop_table('material_lots')
    op.drop_index('idx_boms_part_id_bom_version', table_name='boms')
    op.drop_table('boms')
    op.drop_index('idx_replicated_work_orders_part_id', table_name='replicated_work_orders')
    op.drop_table('replicated_work_orders')
    op.drop_index('idx_parts_part_number', table_name='parts')
    op.drop_table('parts')
    op.drop_index('idx_locations_site_id', table_name='locations')
    op.drop_index('idx_locations_code', table_name='locations')
    op.drop_table('locations')
    framework_tables.downgrade(op)
