"""initial

Revision ID: bc303498d373
Revises: <base>
Create Date: 2026-11-22T00:29:38+00:00
Service: resource
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import framework_tables, timeouts

revision = 'bc303498d373'
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
    op.create_table('enterprises',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_enterprises_code', 'enterprises', ['code'], unique=True)
    op.create_table('personnel_classes',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_personnel_classes_code', 'personnel_classes', ['code'], unique=True)
    op.create_table('products',
    sa.Column('product_number', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('part_id', sa.Uuid(), nullable=True),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_products_part_id', 'products', ['part_id'], unique=False)
    op.create_index('idx_products_product_number_revision', 'products', ['product_number', 'revision'], unique=True)
    op.create_table('skills',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_skills_code', 'skills', ['code'], unique=True)
    op.create_table('sites',
    sa.Column('enterprise_id', sa.Uuid(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_sites_enterprise_id_code', 'sites', ['enterprise_id', 'code'], unique=True)
    op.create_table('areas',
    sa.Column('site_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_areas_site_id_code', 'areas', ['site_id', 'code'], unique=True)
    op.create_table('routings',
    sa.Column('product_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_routings_product_id_code_revision', 'routings',
                    ['product_id', 'code', 'revision'], unique=True)
    op.create_index('idx_routings_site_id', 'routings', ['site_id'], unique=False)
    op.create_table('work_centers',
    sa.Column('area_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('capacity_per_hour', sa.Numeric(precision=12, scale=3), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_work_centers_area_id_code', 'work_centers', ['area_id', 'code'], unique=True)
    op.create_table('operations',
    sa.Column('routing_id', sa.Uuid(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('work_center_id', sa.Uuid(), nullable=True),
    sa.Column('setup_minutes', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('run_minutes_per_unit', sa.Numeric(precision=10, scale=3), nullable=False),
    sa.Column('required_skill_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['required_skill_id'], ['skills.id'], ),
    sa.ForeignKeyConstraint(['routing_id'], ['routings.id'], ),
    sa.ForeignKeyConstraint(['work_center_id'], ['work_centers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_operations_required_skill_id', 'operations', ['required_skill_id'], unique=False)
    op.create_index('idx_operations_routing_id_sequence', 'operations', ['routing_id', 'sequence'], unique=True)
    op.create_index('idx_operations_work_center_id', 'operations', ['work_center_id'], unique=False)
    op.create_table('personnel',
    sa.Column('employee_number', sa.String(length=64), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('personnel_class_id', sa.Uuid(), nullable=True),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('work_center_id', sa.Uuid(), nullable=True),
    sa.Column('shift', sa.String(length=32), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['personnel_class_id'], ['personnel_classes.id'], ),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ),
    sa.ForeignKeyConstraint(['work_center_id'], ['work_centers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_personnel_employee_number', 'personnel', ['employee_number'], unique=True)
    op.create_index('idx_personnel_personnel_class_id', 'personnel', ['personnel_class_id'], unique=False)
    op.create_index('idx_personnel_site_id', 'personnel', ['site_id'], unique=False)
    op.create_index('idx_personnel_user_id', 'personnel', ['user_id'], unique=False)
    op.create_index('idx_personnel_work_center_id', 'personnel', ['work_center_id'], unique=False)
    op.create_table('tools',
    sa.Column('tool_number', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('tool_type', sa.String(length=64), nullable=True),
    sa.Column('work_center_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('calibration_due', sa.Date(), nullable=True),
    sa.Column('usage_count', sa.Integer(), nullable=False),
    sa.Column('max_usage', sa.Integer(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['work_center_id'], ['work_centers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_tools_tool_number', 'tools', ['tool_number'], unique=True)
    op.create_index('idx_tools_work_center_id', 'tools', ['work_center_id'], unique=False)
    op.create_table('work_units',
    sa.Column('work_center_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['work_center_id'], ['work_centers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_work_units_work_center_id_code', 'work_units', ['work_center_id', 'code'], unique=True)
    op.create_table('certifications',
    sa.Column('personnel_id', sa.Uuid(), nullable=False),
    sa.Column('skill_id', sa.Uuid(), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('certificate_number', sa.String(length=128), nullable=True),
    sa.Column('issuer', sa.String(length=255), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('is_revoked', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['personnel_id'], ['personnel.id'], ),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_certifications_personnel_id', 'certifications', ['personnel_id'], unique=False)
    op.create_index('idx_certifications_skill_id', 'certifications', ['skill_id'], unique=False)
    op.create_index('idx_certifications_valid_until', 'certifications', ['valid_until'], unique=False)
    op.create_table('equipment',
    sa.Column('work_center_id', sa.Uuid(), nullable=False),
    sa.Column('work_unit_id', sa.Uuid(), nullable=True),
    sa.Column('equipment_class', sa.String(length=64), nullable=True),
    sa.Column('manufacturer', sa.String(length=128), nullable=True),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('serial_number', sa.String(length=128), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['work_center_id'], ['work_centers.id'], ),
    sa.ForeignKeyConstraint(['work_unit_id'], ['work_units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_equipment_code', 'equipment', ['code'], unique=True)
    op.create_index('idx_equipment_work_center_id', 'equipment', ['work_center_id'], unique=False)
    op.create_index('idx_equipment_work_unit_id', 'equipment', ['work_unit_id'], unique=False)
    op.create_table('personnel_skills',
    sa.Column('personnel_id', sa.Uuid(), nullable=False),
    sa.Column('skill_id', sa.Uuid(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['personnel_id'], ['personnel.id'], ),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_personnel_skills_personnel_id_skill_id', 'personnel_skills',
                    ['personnel_id', 'skill_id'], unique=True)
    op.create_index('idx_personnel_skills_skill_id', 'personnel_skills', ['skill_id'], unique=False)


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_personnel_skills_skill_id', table_name='personnel_skills')
    op.drop_index('idx_personnel_skills_personnel_id_skill_id', table_name='personnel_skills')
    op.drop_table('personnel_skills')
    op.drop_index('idx_equipment_work_unit_id', table_name='equipment')
    op.drop_index('idx_equipment_work_center_id', table_name='equipment')
    op.drop_index('idx_equipment_code', table_name='equipment')
    op.drop_table('equipment')
    op.drop_index('idx_certifications_valid_until', table_name='certifications')
    op.drop_index('idx_certifications_skill_id', table_name='certifications')
    op.drop_index('idx_certifications_personnel_id', table_name='certifications')
    op.drop_table('certifications')
    op.drop_index('idx_work_units_work_center_id_code', table_name='work_units')
    op.drop_table('work_units')
    op.drop_index('idx_tools_work_center_id', table_name='tools')
    op.drop_index('idx_tools_tool_number', table_name='tools')
    op.drop_table('tools')
    op.drop_index('idx_personnel_work_center_id', table_name='personnel')
    op.drop_index('idx_personnel_user_id', table_name='personnel')
    op.drop_index('idx_personnel_site_id', table_name='personnel')
    op.drop_index('idx_personnel_personnel_class_id', table_name='personnel')
    op.drop_index('idx_personnel_employee_number', table_name='personnel')
    op.drop_table('personnel')
    op.drop_index('idx_operations_work_center_id', table_name='operations')
    op.drop_index('idx_operations_routing_id_sequence', table_name='operations')
    op.drop_index('idx_operations_required_skill_id', table_name='operations')
    op.drop_table('operations')
    op.drop_index('idx_work_centers_area_id_code', table_name='work_centers')
    op.drop_table('work_centers')
    op.drop_index('idx_routings_site_id', table_name='routings')
    op.drop_index('idx_routings_product_id_code_revision', table_name='routings')
    op.drop_table('routings')
    op.drop_index('idx_areas_site_id_code', table_name='areas')
    op.drop_table('areas')
    op.drop_index('idx_sites_enterprise_id_code', table_name='sites')
    op.drop_table('sites')
    op.drop_index('idx_skills_code', table_name='skills')
    op.drop_table('skills')
    op.drop_index('idx_products_product_number_revision', table_name='products')
    op.drop_index('idx_products_part_id', table_name='products')
    op.drop_table('products')
    op.drop_index('idx_personnel_classes_code', table_name='personnel_classes')
    op.drop_table('personnel_classes')
    op.drop_index('idx_enterprises_code', table_name='enterprises')
    op.drop_table('enterprises')
    framework_tables.downgrade(op)
