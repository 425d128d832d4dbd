"""Tenants and their API keys. A key is `vn_` + 43 url-safe characters (32 random bytes); only
its SHA-256 is stored, and it is shown once, when created.

Also a tenant's own recording retention (`TenantRetention`, migration `0010_tenant_retention`)
and a tenant's erasure (`erase_tenant`): every row of it in every table the store has."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, CursorResult, ForeignKey, Integer, Table, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from control_api.quotas import QuotaLookup, TenantQuota
from control_api.store.base import Base, Store
from control_api.store.errors import Conflict
from control_api.store.migrate import target_metadata
from control_api.store.models import ApiKey, Tenant, utcnow

KEY_PREFIX: Final = "vn_"
KEPT_EVENTS: Final = ("tenant.deleted",)
"""Outbox events of a tenant that its erasure leaves (for downstream stores to follow)."""


class TenantRetention(Base):
    """How long the tenant's call recordings are kept, its own (`PUT /v1/tenants/{id}/
    recording-retention`); no row: the node's `recording.retention_days`."""

    __tablename__ = "tenant_retention"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    recording_days: Mapped[int] = mapped_column(Integer)
    """Days a recording is kept after it was stored; 0: kept."""


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_tenant(
    session: AsyncSession,
    name: str,
    *,
    tenant_id: str | None = None,
    max_concurrent_calls: int | None = None,
    calls_per_minute: int | None = None,
) -> Tenant:
    tenant = Tenant(
        id=tenant_id or f"t_{uuid.uuid4().hex[:16]}",
        name=name,
        created_at=utcnow(),
        max_concurrent_calls=max_concurrent_calls,
        calls_per_minute=calls_per_minute,
    )
    if await session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
        raise Conflict(f"name: a tenant named {name!r} already exists")
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"name: a tenant named {name!r} already exists") from exc
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def list_tenants(session: AsyncSession) -> Sequence[Tenant]:
    return (await session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id))).all()


async def create_key(session: AsyncSession, tenant_id: str, role: str) -> tuple[ApiKey, str]:
    """A new key for the tenant; returns the row and the key itself (not stored)."""
    key = new_key()
    row = ApiKey(
        id=f"k_{uuid.uuid4().hex[:16]}",
        tenant_id=tenant_id,
        role=role,
        key_hash=hash_key(key),
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row, key


async def list_keys(session: AsyncSession, tenant_id: str) -> Sequence[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    return (await session.scalars(query)).all()


async def revoke_key(
    session: AsyncSession, tenant_id: str, key_id: str, now: datetime | None = None
) -> ApiKey | None:
    """Revoke the tenant's key (idempotent); None when the tenant has no such key."""
    row = await session.scalar(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
    )
    if row is not None and row.revoked_at is None:
        row.revoked_at = now or utcnow()
    return row


async def principal_key(session: AsyncSession, key: str) -> ApiKey | None:
    """The live (not revoked) stored key matching `key`, if any."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    digest = hash_key(key)
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    return row


def quota_lookup(store: Store) -> QuotaLookup:
    """The `Quotas` lookup reading a tenant's limits (an unknown tenant has none)."""

    async def lookup(tenant_id: str) -> TenantQuota:
        async with store.session() as session:
            tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            return TenantQuota()
        return TenantQuota(
            max_concurrent_calls=tenant.max_concurrent_calls,
            calls_per_minute=tenant.calls_per_minute,
        )

    return lookup


async def recording_days(session: AsyncSession, tenant_id: str) -> int | None:
    """The tenant's own recording retention in days (0: kept); None: the node's."""
    row = await session.get(TenantRetention, tenant_id)
    return None if row is None else row.recording_days


async def set_recording_days(session: AsyncSession, tenant_id: str, days: int | None) -> None:
    """Keep the tenant's recordings `days` days (0: kept; None: as the node says)."""
    row = await session.get(TenantRetention, tenant_id)
    if days is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(TenantRetention(tenant_id=tenant_id, recording_days=days))
    else:
        row.recording_days = days


def _owned(table: Table, tenant_id: str) -> ColumnElement[bool] | None:
    """Which of `table`'s rows are the tenant's: its `tenant_id`, or a foreign key to the tenant
    or to a row that has a `tenant_id` (an agent's versions); None: none are."""
    if "tenant_id" in table.c:
        where = table.c.tenant_id == tenant_id
        if table.name == "outbox":
            where = where & table.c.type.not_in(KEPT_EVENTS)
        return where
    for fk in table.foreign_keys:
        parent = fk.column.table
        if parent.name == "tenants":
            return fk.parent == tenant_id
        if isinstance(parent, Table) and "tenant_id" in parent.c:
            return fk.parent.in_(select(fk.column).where(parent.c.tenant_id == tenant_id))
    return None


async def _deleted(session: AsyncSession, statement: Any) -> int:
    result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
    return max(result.rowcount, 0)


async def erase_tenant(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    """Delete the tenant and every row of it in every table of the store (`TABLE_MODULES`, and
    any other table module loaded): its own `tenant_id`, or a key to a row that has one; and the
    relay's marks of its calls. Its `tenant.deleted` events stay. Returns the rows deleted per
    table (only tables that had some)."""
    metadata = target_metadata()
    counts: dict[str, int] = {}
    marks, outbox, calls = (metadata.tables.get(n) for n in ("relay_marks", "outbox", "calls"))
    if marks is not None and outbox is not None and calls is not None:
        ids = (
            select(outbox.c.call_id)
            .where(outbox.c.tenant_id == tenant_id)
            .union(select(calls.c.id).where(calls.c.tenant_id == tenant_id))
        )
        counts["relay_marks"] = await _deleted(
            session, delete(marks).where(marks.c.call_id.in_(ids))
        )
    for table in reversed(metadata.sorted_tables):
        where = _owned(table, tenant_id) if table.name != "tenants" else None
        if where is not None:
            counts[table.name] = await _deleted(session, delete(table).where(where))
    counts["tenants"] = await _deleted(session, delete(Tenant).where(Tenant.id == tenant_id))
    return {name: count for name, count in sorted(counts.items()) if count}
