"""product part number: replicated from material's part (part_number, part_version, replicated_parts)

Revision ID: 9e7c3a1d5f60
Revises: bc303498d373
Create Date: 2026-12-06T12:00:00+00:00
Service: resource
"""
import sqlalchemy as sa
from alembic import op

from isles.migrations import timeouts

revision = '9e7c3a1d5f60'
down_revision = 'bc303498d373'
branch_labels = None
depends_on = None


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.add_column('products', sa.Column('part_number', sa.String(length=64), nullable=True))
    op.add_column('products', sa.Column('part_version', sa.BigInteger(), nullable=True))
    op.create_table('replicated_parts',
    sa.Column('part_number', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_table('replicated_parts')
    with op.batch_alter_table('products') as batch:
        batch.drop_column('part_version')
        batch.drop_column('part_number')
