"""initial

Revision ID: ed6017e74a59
Revises: <base>
Create Date: 2026-11-29T16:19:38+00:00
Service: work_order
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import framework_tables, timeouts

revision = 'ed6017e74a59'
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
    op.create_table('production_schedules',
    sa.Column('schedule_number', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_production_schedules_schedule_number', 'production_schedules',
                    ['schedule_number'], unique=True)
    op.create_index('idx_production_schedules_site_id', 'production_schedules', ['site_id'], unique=False)
    op.create_table('replicated_parts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('part_number', sa.String(length=64), nullable=True),
    sa.Column('part_name', sa.String(length=255), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('replicated_routings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('product_id', sa.String(length=36), nullable=True),
    sa.Column('part_id', sa.String(length=36), nullable=True),
    sa.Column('site_id', sa.String(length=36), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('revision', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('operations', sa.JSON(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_replicated_routings_part_id_status', 'replicated_routings',
                    ['part_id', 'status'], unique=False)
    op.create_index('idx_replicated_routings_product_id', 'replicated_routings', ['product_id'], unique=False)
    op.create_index('idx_replicated_routings_site_id', 'replicated_routings', ['site_id'], unique=False)
    op.create_table('replicated_sites',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('site_name', sa.String(length=255), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('replicated_users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('replicated_work_centers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('site_id', sa.String(length=36), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_replicated_work_centers_site_id', 'replicated_work_centers', ['site_id'], unique=False)
    op.create_table('work_instructions',
    sa.Column('part_id', sa.Uuid(), nullable=False),
    sa.Column('operation_code', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('approved_by_id', sa.Uuid(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_work_instructions_approved_by_id', 'work_instructions', ['approved_by_id'], unique=False)
    op.create_index('idx_work_instructions_part_id_operation_code_revision', 'work_instructions',
                    ['part_id', 'operation_code', 'revision'], unique=True)
    op.create_table('work_orders',
    sa.Column('work_order_number', sa.String(length=64), nullable=False),
    sa.Column('part_id', sa.Uuid(), nullable=False),
    sa.Column('part_number', sa.String(length=64), nullable=True),
    sa.Column('part_name', sa.String(length=255), nullable=True),
    sa.Column('part_version', sa.BigInteger(), nullable=True),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('site_name', sa.String(length=255), nullable=True),
    sa.Column('site_version', sa.BigInteger(), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_by_name', sa.String(length=255), nullable=True),
    sa.Column('created_by_active', sa.Boolean(), nullable=True),
    sa.Column('created_by_version', sa.BigInteger(), nullable=True),
    sa.Column('routing_id', sa.Uuid(), nullable=True),
    sa.Column('schedule_id', sa.Uuid(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('quantity_produced', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('quantity_good', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('quantity_scrap', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('held_from', sa.String(length=16), nullable=True),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('allow_overlap', sa.Boolean(), nullable=False),
    sa.Column('due_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scheduled_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scheduled_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('actual_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('actual_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['production_schedules.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_work_orders_created_by_id', 'work_orders', ['created_by_id'], unique=False)
    op.create_index('idx_work_orders_part_id', 'work_orders', ['part_id'], unique=False)
    op.create_index('idx_work_orders_routing_id', 'work_orders', ['routing_id'], unique=False)
    op.create_index('idx_work_orders_schedule_id', 'work_orders', ['schedule_id'], unique=False)
    op.create_index('idx_work_orders_site_id', 'work_orders', ['site_id'], unique=False)
    op.create_index('idx_work_orders_status_due_date', 'work_orders', ['status', 'due_date'], unique=False)
    op.create_index('idx_work_orders_work_order_number', 'work_orders', ['work_order_number'], unique=True)
    op.create_table('dispatches',
    sa.Column('work_order_id', sa.Uuid(), nullable=False),
    sa.Column('work_center_id', sa.Uuid(), nullable=True),
    sa.Column('dispatched_by_id', sa.Uuid(), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_dispatches_dispatched_by_id', 'dispatches', ['dispatched_by_id'], unique=False)
    op.create_index('idx_dispatches_work_center_id', 'dispatches', ['work_center_id'], unique=False)
    op.create_index('idx_dispatches_work_order_id', 'dispatches', ['work_order_id'], unique=False)
    op.create_table('material_actuals',
    sa.Column('consumption_id', sa.Uuid(), nullable=False),
    sa.Column('work_order_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('lot_number', sa.String(length=64), nullable=False),
    sa.Column('part_id', sa.Uuid(), nullable=False),
    sa.Column('part_number', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=False),
    sa.Column('operation_code', sa.String(length=64), nullable=True),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_material_actuals_consumption_id', 'material_actuals', ['consumption_id'], unique=True)
    op.create_index('idx_material_actuals_lot_id', 'material_actuals', ['lot_id'], unique=False)
    op.create_index('idx_material_actuals_part_id', 'material_actuals', ['part_id'], unique=False)
    op.create_index('idx_material_actuals_work_order_id', 'material_actuals', ['work_order_id'], unique=False)
    op.create_table('work_order_operations',
    sa.Column('work_order_id', sa.Uuid(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('work_center_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('planned_setup_minutes', sa.Numeric(precision=12, scale=3), nullable=False),
    sa.Column('planned_run_minutes', sa.Numeric(precision=12, scale=3), nullable=False),
    sa.Column('instruction_id', sa.Uuid(), nullable=True),
    sa.Column('instruction_revision', sa.Integer(), nullable=True),
    sa.Column('actual_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('actual_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('actual_minutes', sa.Numeric(precision=12, scale=3), nullable=False),
    sa.Column('running_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('quantity_good', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('quantity_scrap', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('operator_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['instruction_id'], ['work_instructions.id'], ),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_work_order_operations_instruction_id', 'work_order_operations',
                    ['instruction_id'], unique=False)
    op.create_index('idx_work_order_operations_operator_id', 'work_order_operations', ['operator_id'], unique=False)
    op.create_index('idx_work_order_operations_work_center_id_status', 'work_order_operations',
                    ['work_center_id', 'status'], unique=False)
    op.create_index('idx_work_order_operations_work_order_id_sequence', 'work_order_operations',
                    ['work_order_id', 'sequence'], unique=True)
    op.create_table('performance_reports',
    sa.Column('work_order_id', sa.Uuid(), nullable=False),
    sa.Column('operation_id', sa.Uuid(), nullable=False),
    sa.Column('quantity_good', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('quantity_scrap', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('scrap_reason', sa.String(length=500), nullable=True),
    sa.Column('reported_by_id', sa.Uuid(), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['operation_id'], ['work_order_operations.id'], ),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_performance_reports_operation_id', 'performance_reports', ['operation_id'], unique=False)
    op.create_index('idx_performance_reports_reported_by_id', 'performance_reports', ['reported_by_id'], unique=False)
    op.create_index('idx_performance_reports_work_order_id', 'performance_reports', ['work_order_id'], unique=False)


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_performance_reports_work_order_id', table_name='performance_reports')
    op.drop_index('idx_performance_reports_reported_by_id', table_name='performance_reports')
    op.drop_index('idx_performance_reports_operation_id', table_name='performance_reports')
    op.drop_table('performance_reports')
    op.drop_index('idx_work_order_operations_work_order_id_sequence', table_name='work_order_operations')
    op.drop_index('idx_work_order_operations_work_center_id_status', table_name='work_order_operations')
    op.drop_index('idx_work_order_operations_operator_id', table_name='work_order_operations')
    op.drop_index('idx_work_order_operations_instruction_id', table_name='work_order_operations')
    op.drop_table('work_order_operations')
    op.drop_index('idx_material_actuals_work_order_id', table_name='material_actuals')
    op.drop_index('idx_material_actuals_part_id', table_name='material_actuals')
    op.drop_index('idx_material_actuals_lot_id', table_name='material_actuals')
    op.drop_index('idx_material_actuals_consumption_id', table_name='material_actuals')
    op.drop_table('material_actuals')
    op.drop_index('idx_dispatches_work_order_id', table_name='dispatches')
    op.drop_index('idx_dispatches_work_center_id', table_name='dispatches')
    op.drop_index('idx_dispatches_dispatched_by_id', table_name='dispatches')
    op.drop_table('dispatches')
    op.drop_index('idx_work_orders_work_order_number', table_name='work_orders')
    op.drop_index('idx_work_orders_status_due_date', table_name='work_orders')
    op.drop_index('idx_work_orders_site_id', table_name='work_orders')
    op.drop_index('idx_work_orders_schedule_id', table_name='work_orders')
    op.drop_index('idx_work_orders_routing_id', table_name='work_orders')
    op.drop_index('idx_work_orders_part_id', table_name='work_orders')
    op.drop_index('idx_work_orders_created_by_id', table_name='work_orders')
    op.drop_table('work_orders')
    op.drop_index('idx_work_instructions_part_id_operation_code_revision', table_name='work_instructions')
    op.drop_index('idx_work_instructions_approved_by_id', table_name='work_instructions')
    op.drop_table('work_instructions')
    op.drop_index('idx_replicated_work_centers_site_id', table_name='replicated_work_centers')
    op.drop_table('replicated_work_centers')
    op.drop_table('replicated_users')
    op.drop_table('replicated_sites')
    op.drop_index('idx_replicated_routings_site_id', table_name='replicated_routings')
    op.drop_index('idx_replicated_routings_product_id', table_name='replicated_routings')
    op.drop_index('idx_replicated_routings_part_id_status', table_name='replicated_routings')
    op.drop_table('replicated_routings')
    op.drop_table('replicated_parts')
    op.drop_index('idx_production_schedules_site_id', table_name='production_schedules')
    op.drop_index('idx_production_schedules_schedule_number', table_name='production_schedules')
    op.drop_table('production_schedules')
    framework_tables.downgrade(op)
