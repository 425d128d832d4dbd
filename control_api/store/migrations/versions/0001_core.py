"""Core control plane: tenants, API keys, agents and their versions, numbers.

Revision ID: 0001_core
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _create_tenants() -> None:
    """The tenants, with their optional call limits."""
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        _when("created_at"),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=True),
        sa.Column("calls_per_minute", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )


def _create_api_keys() -> None:
    """Hashed API keys, each with a role in one tenant."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _when("created_at"),
        _when("revoked_at", nullable=True),
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="ck_api_keys_role"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_api_keys_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])


def _create_agents() -> None:
    """The agents of each tenant (name unique per tenant)."""
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        _when("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_agents_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_agents_tenant_id"),
    )


def _create_agent_versions() -> None:
    """Every saved version of an agent's spec."""
    op.create_table(
        "agent_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        _when("created_at"),
        sa.Column("note", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name="fk_agent_versions_agent_id_agents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agent_versions"),
        sa.UniqueConstraint("agent_id", "version", name="uq_agent_versions_agent_id"),
    )


def _create_numbers() -> None:
    """Phone numbers, each routed to one tenant's agent."""
    op.create_table(
        "numbers",
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_numbers_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("number", name="pk_numbers"),
    )
    op.create_index("ix_numbers_tenant_id", "numbers", ["tenant_id"])


def upgrade() -> None:
    _create_tenants()
    _create_api_keys()
    _create_agents()
    _create_agent_versions()
    _create_numbers()


def downgrade() -> None:
    op.drop_index("ix_numbers_tenant_id", table_name="numbers")
    op.drop_table("numbers")
    op.drop_table("agent_versions")
    op.drop_table("agents")
    op.drop_index("ix_api_keys_tenant_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
