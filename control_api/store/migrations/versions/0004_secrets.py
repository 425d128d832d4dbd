"""Tenant secrets (sealed with the node's key), and which agent versions are the operator's.

Existing webhook secrets are sealed by the node at its next start (`store.secrets.seal_legacy`:
the key is the node's, not the migration's). Versions seeded from the operator's files are
marked `operator`; nothing else is.

Revision ID: 0004_secrets
Revises: 0003_replay
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_secrets"
down_revision = "0003_replay"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_secrets",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_tenant_secrets_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "name", name="pk_tenant_secrets"),
    )
    with op.batch_alter_table("agent_versions") as batch:
        batch.add_column(
            sa.Column("operator", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    versions = sa.table("agent_versions", sa.column("note", sa.String), sa.column("operator"))
    op.execute(versions.update().where(versions.c.note == "seeded").values(operator=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_versions") as batch:
        batch.drop_column("operator")
    op.drop_table("tenant_secrets")
