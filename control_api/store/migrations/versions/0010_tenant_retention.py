"""A tenant's own retention of its call recordings (issue 19): `tenant_retention`, one row per
tenant that has one (`recording_days`, 0: kept); no row: the node's `recording.retention_days`.

Revision ID: 0010_tenant_retention
Revises: 0009_dnc
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_tenant_retention"
down_revision = "0009_dnc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_retention",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("recording_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_tenant_retention_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_retention"),
    )


def downgrade() -> None:
    op.drop_table("tenant_retention")
