"""The tenant's do-not-call list (issue 17): `dnc_numbers`, one row per tenant and E.164
number, with when it was added and an optional reason.

Revision ID: 0009_dnc
Revises: 0008_campaigns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_dnc"
down_revision = "0008_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dnc_numbers",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(256), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_dnc_numbers_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "number", name="pk_dnc_numbers"),
    )


def downgrade() -> None:
    op.drop_table("dnc_numbers")
