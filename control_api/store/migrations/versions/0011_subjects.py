"""Data-subject requests (issue 19): `subject_requests`, the audit record of each export and
erasure (the subject's keyed reference, never the number; who, when, how many of each).

Revision ID: 0011_subjects
Revises: 0010_tenant_retention
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_subjects"
down_revision = "0010_tenant_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_requests",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_ref", sa.String(80), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_subject_requests_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_subject_requests"),
    )
    op.create_index("ix_subject_requests_tenant_at", "subject_requests", ["tenant_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_subject_requests_tenant_at", table_name="subject_requests")
    op.drop_table("subject_requests")
