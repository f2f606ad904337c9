"""shop floor holes: the part's tracking, the BOM in force per part

Revision ID: 5d2b8f3e9a41
Revises: 3f1c0a9d2b71
Create Date: 2026-12-06T12:00:00+00:00
Service: work_order
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import timeouts

revision = '5d2b8f3e9a41'
down_revision = '3f1c0a9d2b71'
branch_labels = None
depends_on = None


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.add_column('replicated_parts', sa.Column('tracking', sa.String(length=16), nullable=True))
    op.create_table('replicated_boms',
    sa.Column('bom_version', sa.Integer(), nullable=True),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_table('replicated_boms')
    with op.batch_alter_table('replicated_parts') as batch:
        batch.drop_column('tracking')
