"""Analytics: call records, the event outbox, relay marks, dead letters, webhooks.

Revision ID: 0002_calls
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_calls"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _create_calls() -> None:
    """One row per call: where it ran, how it ended, its outcome, transcript and latency."""
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("agent_version", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("from_uri", sa.String(512), nullable=False),
        sa.Column("to_uri", sa.String(512), nullable=False),
        _when("started_at"),
        _when("ended_at", nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("disposition", sa.String(16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("sentiment", sa.String(16), nullable=True),
        sa.Column("sentiment_score", sa.Float(), nullable=True),
        sa.Column("outcome_source", sa.String(16), nullable=True),
        sa.Column("slots", sa.JSON(), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=True),
        sa.Column("latency", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
    )
    op.create_index("ix_calls_tenant_id", "calls", ["tenant_id"])
    op.create_index("ix_calls_tenant_started", "calls", ["tenant_id", "started_at", "id"])
    op.create_index("ix_calls_node_open", "calls", ["node", "ended_at"])


def _create_outbox() -> None:
    """The event outbox: each call's events in order, for the relays to deliver."""
    op.create_table(
        "outbox",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(96), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_call_seq", "outbox", ["call_id", "seq"], unique=True)
    op.create_index("ix_outbox_node_id", "outbox", ["node", "id"])


def _create_relay_marks() -> None:
    """How far each sink has delivered each call's events."""
    op.create_table(
        "relay_marks",
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("delivered_seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sink", "call_id", name="pk_relay_marks"),
    )


def _create_dead_letters() -> None:
    """Events a sink gave up delivering, with the last error."""
    op.create_table(
        "dead_letters",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(96), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(256), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_sink", "dead_letters", ["sink"])
    op.create_index("ix_dead_letters_tenant_id", "dead_letters", ["tenant_id"])


def _create_webhooks() -> None:
    """Each tenant's webhook subscriptions."""
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("after_outbox_id", _BIG_ID, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_index("ix_webhooks_tenant_id", "webhooks", ["tenant_id"])


def upgrade() -> None:
    _create_calls()
    _create_outbox()
    _create_relay_marks()
    _create_dead_letters()
    _create_webhooks()


def downgrade() -> None:
    op.drop_table("webhooks")
    op.drop_table("dead_letters")
    op.drop_table("relay_marks")
    op.drop_table("outbox")
    op.drop_table("calls")
