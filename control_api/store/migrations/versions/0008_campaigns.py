"""Campaigns (issue 17): `campaigns`, their `campaign_contacts` (with the dialler's lease) and
the `campaign_attempts` made on them.

Revision ID: 0008_campaigns
Revises: 0007_pii_redaction
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_campaigns"
down_revision = "0007_pii_redaction"
branch_labels = None
depends_on = None


def _tenant(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def _campaign(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["campaign_id"],
        ["campaigns.id"],
        name=f"fk_{table}_campaign_id_campaigns",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    _campaigns()
    _contacts()
    _attempts()


def _campaigns() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('draft', 'running', 'paused', 'completed', 'cancelled')",
            name="ck_campaigns_state",
        ),
        _tenant("campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_tenant_id", "campaigns", ["tenant_id"])


def _contacts() -> None:
    op.create_table(
        "campaign_contacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(20), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_eligible_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        _campaign("campaign_contacts"),
        _tenant("campaign_contacts"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_contacts"),
        sa.UniqueConstraint("campaign_id", "number", name="uq_campaign_contacts_campaign_id"),
    )
    op.create_index("ix_campaign_contacts_campaign_id", "campaign_contacts", ["campaign_id"])


def _attempts() -> None:
    op.create_table(
        "campaign_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disposition", sa.String(20), nullable=True),
        sa.Column("call_id", sa.String(64), nullable=True),
        _campaign("campaign_attempts"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["campaign_contacts.id"],
            name="fk_campaign_attempts_contact_id_campaign_contacts",
            ondelete="CASCADE",
        ),
        _tenant("campaign_attempts"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_attempts"),
        sa.UniqueConstraint("contact_id", "attempt", name="uq_campaign_attempts_contact_id"),
    )
    op.create_index("ix_campaign_attempts_campaign_id", "campaign_attempts", ["campaign_id"])


def downgrade() -> None:
    op.drop_table("campaign_attempts")
    op.drop_table("campaign_contacts")
    op.drop_table("campaigns")
