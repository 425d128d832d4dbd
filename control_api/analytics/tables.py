"""Analytics tables: call records, the event outbox, relay progress, dead letters, webhooks.

- `calls`: one row per call, written with its `call.started` event and completed with its
  `call.ended` event, each in the same transaction as the outbox row.
- `outbox`: every event, in the order written (`id`); `event_id` is `call_id:seq`.
- `relay_marks`: per sink and call, the last `seq` delivered (or dead-lettered) and the failed
  tries of the next one; a restarted node resumes from here.
- `dead_letters`: events a webhook refused `webhook_max_attempts` times; `replay` marks the ones
  an admin asked to send again (`POST /v1/webhooks/{id}/dead-letters/replay`).
- `webhooks`: tenants' endpoints (the signing secret is stored to sign, shown once).

`from_uri`/`to_uri` and transcripts are PII: stored here, never logged.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from control_api.store import Base

_BigId = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit ids on PostgreSQL; INTEGER (rowid alias, autoincrement) on SQLite."""


class UtcDateTime(TypeDecorator[datetime.datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware (UTC) one")
        value = value.astimezone(datetime.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    agent: Mapped[str] = mapped_column(String(64))
    agent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    node: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(16))
    transport: Mapped[str] = mapped_column(String(16))
    from_uri: Mapped[str] = mapped_column(String(512), default="")
    to_uri: Mapped[str] = mapped_column(String(512), default="")
    started_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime.datetime | None] = mapped_column(UtcDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))
    duration_s: Mapped[float | None] = mapped_column(Float)
    disposition: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[str | None] = mapped_column(String(16))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    outcome_source: Mapped[str | None] = mapped_column(String(16))
    slots: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    transcript: Mapped[list[Any] | None] = mapped_column(JSON)
    latency: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_calls_tenant_started", "tenant_id", "started_at", "id"),
        Index("ix_calls_node_open", "node", "ended_at"),
    )


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(96), unique=True)
    call_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    """The event as JSON (what sinks send)."""
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_outbox_call_seq", "call_id", "seq", unique=True),
        Index("ix_outbox_node_id", "node", "id"),
    )


class RelayMarkRow(Base):
    __tablename__ = "relay_marks"

    sink: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivered_seq: Mapped[int] = mapped_column(Integer, default=-1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Failed tries of the event after `delivered_seq`."""


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    sink: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(96))
    call_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime())
    replay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Queued for one more try by the relay (delivered: the row goes; failed: it stays)."""


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    """Event types sent; empty: all."""
    secret: Mapped[str] = mapped_column(String(128))
    after_outbox_id: Mapped[int] = mapped_column(_BigId, default=0)
    """Only events written after the webhook was created are sent to it."""
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime())
