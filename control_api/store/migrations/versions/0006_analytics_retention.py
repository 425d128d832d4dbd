"""Tenants' analytics retention (`analytics_retention_days`; null: kept forever).

Revision ID: 0006_analytics_retention
Revises: 0005_number_ranges
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_analytics_retention"
down_revision = "0005_number_ranges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("analytics_retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("analytics_retention_days")
