"""sequences: generated work order numbers come from a sequence

Revision ID: 3f1c0a9d2b71
Revises: ed6017e74a59
Create Date: 2026-12-01T10:00:00+00:00
Service: work_order
"""
from alembic import op

from isles import sequences
from isles.migrations import timeouts

revision = '3f1c0a9d2b71'
down_revision = 'ed6017e74a59'
branch_labels = None
depends_on = None


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    sequences.create_table(op)
    # numbers were generated as "row count + 1" before: continue after them
    sequences.create(op, "work_order_number", start_after="SELECT count(*) FROM work_orders")


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    sequences.drop(op, "work_order_number")
    sequences.drop_table(op)
