"""Tenants and their API keys. A key is `vn_` + 43 url-safe characters (32 random bytes); only
its SHA-256 is stored, and it is shown once, when created."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.quotas import QuotaLookup, TenantQuota
from control_api.store.base import Store
from control_api.store.errors import Conflict
from control_api.store.models import ApiKey, Tenant, utcnow

KEY_PREFIX: Final = "vn_"


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
