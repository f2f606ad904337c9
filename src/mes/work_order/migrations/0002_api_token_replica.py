"""api token replica

Revision ID: b4ffe95b9929
Revises: 29ebc3e59da2
Create Date: 2026-11-22T00:31:07+00:00
Service: work_order
"""
from alembic import op
import sqlalchemy as sa

from isles.migrations import timeouts

revision = 'b4ffe95b9929'
down_revision = '29ebc3e59da2'
branch_labels = None
depends_on = None
# A revision that cannot be undone says why here; `isles migrate down` then refuses it:
# irreversible = "drops data that cannot be restored"
# A revision that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) runs on its own with:
# transactional = False


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.create_table('isles_api_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('username', sa.String(length=150), nullable=True),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_isles_api_tokens_token_hash', 'isles_api_tokens', ['token_hash'], unique=True)
    op.create_index('idx_isles_api_tokens_user_id', 'isles_api_tokens', ['user_id'], unique=False)


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    op.drop_index('idx_isles_api_tokens_user_id', table_name='isles_api_tokens')
    op.drop_index('idx_isles_api_tokens_token_hash', table_name='isles_api_tokens')
    op.drop_table('isles_api_tokens')
