"""The control plane's core tables: tenants, their API keys, agents (versioned) and numbers.

Every tenant-owned row carries `tenant_id`; every query on them filters by it. Schema changes go
through a new Alembic revision in `migrations/versions/` (revision `0001_core` creates these).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_api.store.base import Base

ROLES = ("admin", "operator", "viewer")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer, default=None)
    """At most this many live calls at once on a node (None: no tenant limit)."""
    calls_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    """At most this many calls started in any 60 s on a node (None: no tenant limit)."""
    analytics_retention_days: Mapped[int | None] = mapped_column(Integer, default=None)
    """Keep the tenant's ClickHouse analytics this many days, in whole months (None: forever)."""
    pii_redaction: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    """The kinds of personal data redacted from the tenant's transcripts, events, history and
    LLM context (`agents.pii`; None: every kind)."""


class ApiKey(Base):
    """A tenant API key: only the SHA-256 of the key is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Agent(Base):
    """An agent of a tenant; `version` is its current version (the highest). Deleting sets
    `deleted_at` and keeps the versions (live calls pinned to them go on)."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class AgentVersion(Base):
    """One immutable version of an agent's spec (TOML text, validated by `parse_spec`)."""

    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("agent_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str] = mapped_column(String(128), default="")
    """How the version came about: "created", "updated", "rollback to 2", "seeded"."""
    operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The operator's own spec (a file agent seeded from `agents.dir` / the embedded ones, or a
    rollback to one): only these may read API keys from the node's environment and reach a
    private `base_url`. Every version made through the API is a tenant's (False)."""


class Number(Base):
    """A DID or SIP user routed to a tenant's agent; unique across the fleet."""

    __tablename__ = "numbers"

    number: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    agent: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TenantSecret(Base):
    """A tenant's secret (an LLM API key, say), sealed with the node's key (`store.crypto`).
    Write-only through the API: names are listed, values never leave the node except to the
    endpoint an agent sends them to."""

    __tablename__ = "tenant_secrets"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    """`SecretBox.seal(value, tenant_secret_context(tenant_id, name))`."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
