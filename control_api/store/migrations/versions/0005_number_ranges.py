"""Number ranges: the numbers a tenant may route itself (assigned by the platform admin).

Revision ID: 0005_number_ranges
Revises: 0004_secrets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_number_ranges"
down_revision = "0004_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "number_ranges",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("pattern", sa.String(65), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_number_ranges_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "pattern", name="pk_number_ranges"),
    )


def downgrade() -> None:
    op.drop_table("number_ranges")
