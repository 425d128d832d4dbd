"""Dead letters can be queued for replay.

Revision ID: 0003_replay
Revises: 0002_calls
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_replay"
down_revision = "0002_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(
            sa.Column("replay", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("replay")
