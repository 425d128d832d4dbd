"""Tenants' PII redaction policy (`pii_redaction`, the kinds redacted; null: every kind).

Revision ID: 0007_pii_redaction
Revises: 0006_analytics_retention
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_pii_redaction"
down_revision = "0006_analytics_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("pii_redaction", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("pii_redaction")
