"""initial

Revision ID: 7b957c5985cc
Revises: <base>
Create Date: 2026-11-21T23:55:38+00:00
Service: material
"""
from alembic import op
import sqlalchemy as sa

from isles.migrations import timeouts

revision = '7b957c5985cc'
down_revision = None
branch_labels = None
depends_on = None
# A revision that cannot be undone says why here; `isles migrate down` then refuses it:
# irreversible = "drops data that cannot be restored"


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.create_table('isles_dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('partition_key', sa.String(length=255), nullable=False),
    sa.Column('envelope', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_isles_dead_letters_event_id', 'isles_dead_letters', ['event_id'], unique=False)
    op.create_index('idx_isles_dead_letters_source_partition_key_status', 'isles_dead_letters', ['source', 'partition_key', 'status'], unique=False)
    op.create_table('isles_inbox',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('partition_key', sa.String(length=255), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('idx_isles_inbox_processed_at', 'isles_inbox', ['processed_at'], unique=False)
    op.create_table('isles_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('partition_key', sa.String(length=255), nullable=False),
    sa.Column('entity_version', sa.BigInteger(), nullable=True),
    sa.Column('data_version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('trace_parent', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    op.create_index('idx_isles_outbox_partition_key', 'isles_outbox', ['partition_key'], unique=False)
    op.create_index('idx_isles_outbox_pending', 'isles_outbox', ['id'], unique=False, postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))
    op.create_index('idx_isles_outbox_published_at', 'isles_outbox', ['published_at'], unique=False)
    op.create_table('parts',
    sa.Column('part_number', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('unit_of_measure', sa.String(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_parts_part_number', 'parts', ['part_number'], unique=True)


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_parts_part_number', table_name='parts')
    op.drop_table('parts')
    op.drop_index('idx_isles_outbox_published_at', table_name='isles_outbox')
    op.drop_index('idx_isles_outbox_pending', table_name='isles_outbox', postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))
    op.drop_index('idx_isles_outbox_partition_key', table_name='isles_outbox')
    op.drop_table('isles_outbox')
    op.drop_index('idx_isles_inbox_processed_at', table_name='isles_inbox')
    op.drop_table('isles_inbox')
    op.drop_index('idx_isles_dead_letters_source_partition_key_status', table_name='isles_dead_letters')
    op.drop_index('idx_isles_dead_letters_event_id', table_name='isles_dead_letters')
    op.drop_table('isles_dead_letters')
