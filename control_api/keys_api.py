"""API keys of a tenant (its `admin` keys or the platform admin): created with a role, shown
once, revoked at once.

`POST /v1/keys {"tenant"?, "role"}` → `{"id", "key", "role", "tenant", "created_at"}` (the only
time the key is shown); `GET /v1/keys`; `DELETE /v1/keys/{id}` revokes (idempotent; 401 for that
key from then on). The platform admin names the tenant in the body or `?tenant=`; revoking by id
it may omit it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from sqlalchemy import select

from control_api.acting_tenant import TENANT_IN_BODY, TENANT_MUST_EXIST, ActingTenant
from control_api.api_errors import errors
from control_api.auth import Principal, Role, can_manage
from control_api.state import Api
from control_api.store import tenants as tenant_rows
from control_api.store.models import ApiKey
from control_api.tenants_api import TenantId, TenantQuery, store_errors, utc

log = logging.getLogger(__name__)


class KeyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role
    tenant: TenantId | None = None
    """The tenant (platform admin key only; a tenant key creates keys for its own tenant)."""


class KeyCreated(msgspec.Struct, frozen=True):
    id: str
    key: str
    """The key itself: shown only in this response, store it now."""
    role: str
    tenant: str
    created_at: datetime


class KeyOut(msgspec.Struct, frozen=True):
    id: str
    role: str
    tenant: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyOut:
        return cls(
            id=row.id,
            role=row.role,
            tenant=row.tenant_id,
            created_at=utc(row.created_at),
            revoked_at=None if row.revoked_at is None else utc(row.revoked_at),
        )


@post(
    "/keys",
    guards=[can_manage],
    summary="Create an API key",
    opt={TENANT_IN_BODY: True},
)
async def create_key(
    data: JSONBody[KeyIn],
    api: Api,
    tenant_id: ActingTenant,
) -> KeyCreated:
    async with api.store.session() as session:
        row, key = await tenant_rows.create_key(session, tenant_id, data.role)
    log.info("api key created", extra={"tenant_id": tenant_id, "key_id": row.id, "role": row.role})
    return KeyCreated(
        id=row.id, key=key, role=row.role, tenant=tenant_id, created_at=utc(row.created_at)
    )


@get("/keys", guards=[can_manage], summary="List API keys (never the keys)")
async def list_keys(api: Api, tenant_id: ActingTenant) -> list[KeyOut]:
    async with api.store.session() as session:
        return [KeyOut.of(row) for row in await tenant_rows.list_keys(session, tenant_id)]


@delete(
    "/keys/{key_id:str}",
    guards=[can_manage],
    responses=errors(404),
    summary="Revoke an API key",
    opt={TENANT_MUST_EXIST: False},
)
async def revoke_key(
    key_id: FromPath[str],
    request: Request[Principal, None, State],
    api: Api,
    tenant_id: ActingTenant,
    tenant: TenantQuery = None,
) -> None:
    """The platform admin may leave the tenant out: the key's own tenant, then."""
    async with api.store.session() as session:
        if request.user.is_admin and tenant is None:
            owner = await session.scalar(select(ApiKey.tenant_id).where(ApiKey.id == key_id))
        else:
            owner = tenant_id
        row = None if owner is None else await tenant_rows.revoke_key(session, owner, key_id)
    if row is None:
        raise NotFoundException(f"no key {key_id!r}")
    log.info("api key revoked", extra={"tenant_id": row.tenant_id, "key_id": row.id})


def keys_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[create_key, list_keys, revoke_key],
        exception_handlers=store_errors(),
        opt={TENANT_MUST_EXIST: True},
        **kwargs,
    )
