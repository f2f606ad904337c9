"""sequences: generated lot numbers and process serials come from sequences

Revision ID: 8b4e2d7c1a90
Revises: ebe6dac5e242
Create Date: 2026-12-01T10:00:00+00:00
Service: material
"""
from alembic import op

from isles import sequences
from isles.migrations import timeouts

revision = '8b4e2d7c1a90'
down_revision = 'ebe6dac5e242'
branch_labels = None
depends_on = None


def upgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    sequences.create_table(op)
    sequences.create(op, "lot_number")  # earlier generated lot numbers were random, not counted
    # process serials were "<part>-PS" + (the part's serial count + 1): the total count is past all of them
    sequences.create(op, "process_serial", start_after="SELECT count(*) FROM serialized_parts")


def downgrade() -> None:
    timeouts.apply(lock="5s", statement="60s")
    sequences.drop(op, "process_serial")
    sequences.drop(op, "lot_number")
    sequences.drop_table(op)
