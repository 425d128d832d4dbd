"""Tenants (platform admin key only) and what every tenant-scoped route shares: the `?tenant=`
parameter (resolved by `control_api.acting_tenant`), store errors as 404/409.

`POST /v1/tenants {"name"}` → `{"id", "name", ...}`; `GET /v1/tenants`;
`GET /v1/tenants/{id}` (the platform admin, or any key of that tenant);
`PUT /v1/tenants/{id}/quotas {"max_concurrent_calls", "calls_per_minute"}` (null: no limit);
`GET|PUT /v1/tenants/{id}/number-ranges {"ranges": ["+1555123*", "support"]}`: the numbers the
tenant may route itself (PUT: platform admin only; GET: also the tenant's keys);
`GET|PUT /v1/tenants/{id}/analytics-retention {"days": 90}` (null: kept forever): how long the
tenant's ClickHouse analytics are kept (`control_api.analytics.retention` drops its months past
it; PUT: platform admin only; GET: also the tenant's keys).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ExceptionHandlersMap
from msgspec import Meta
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.api_errors import errors
from control_api.auth import Principal, platform_only
from control_api.number_ranges import MAX_RANGES, NumberRangeText, ranges_of, set_ranges
from control_api.state import Api
from control_api.store import tenants as tenant_rows
from control_api.store.errors import Conflict, NotFound
from control_api.store.models import Tenant

log = logging.getLogger(__name__)

TenantId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DisplayName = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Limit = Annotated[int, Meta(ge=0, le=1_000_000)]
RetentionDays = Annotated[int, Meta(ge=1, le=3660)]
"""A day to ten years."""

TenantQuery = Annotated[
    Annotated[str, Meta(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] | None,
    QueryParameter(
        description="The tenant to act for (platform admin key only; empty or left out: "
        "`demo`, or the key's own tenant).",
    ),
]
"""`?tenant=`: a `TenantId`, or empty (which the query parser reads as not given)."""


def utc(when: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back naive."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _error(status: int) -> Any:
    def handle(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
        return Response({"status_code": status, "detail": str(exc)}, status_code=status)

    return handle


def store_errors() -> ExceptionHandlersMap:
    """Router `exception_handlers` for the store's errors."""
    return {Conflict: _error(409), NotFound: _error(404)}


async def tenant_or_404(
    session: AsyncSession,
    tenant_id: str,
    *,
    user: Principal | None = None,
    field: str | None = None,
) -> Tenant:
    """The tenant `tenant_id`; 404 when there is none, or when `user` (if given) may not act
    for it (a tenant's key does not learn whether another tenant exists). `field`, the request
    field that named it, leads the message (`tenant: no tenant 'x'`)."""
    row = None
    if user is None or user.may_act_for(tenant_id):
        row = await tenant_rows.get_tenant(session, tenant_id)
    if row is None:
        prefix = f"{field}: " if field else ""
        raise NotFoundException(f"{prefix}no tenant {tenant_id!r}")
    return row


class TenantIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: DisplayName
    max_concurrent_calls: Limit | None = None
    calls_per_minute: Limit | None = None


class QuotasIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-node limits for the tenant's calls; null: no limit."""

    max_concurrent_calls: Limit | None = None
    calls_per_minute: Limit | None = None


class TenantOut(msgspec.Struct, frozen=True):
    id: str
    name: str
    created_at: datetime
    max_concurrent_calls: int | None
    calls_per_minute: int | None

    @classmethod
    def of(cls, row: Tenant) -> TenantOut:
        return cls(
            id=row.id,
            name=row.name,
            created_at=utc(row.created_at),
            max_concurrent_calls=row.max_concurrent_calls,
            calls_per_minute=row.calls_per_minute,
        )


@post("/tenants", guards=[platform_only], responses=errors(409), summary="Create a tenant")
async def create_tenant(data: JSONBody[TenantIn], api: Api) -> TenantOut:
    async with api.store.session() as session:
        row = await tenant_rows.create_tenant(
            session,
            data.name,
            max_concurrent_calls=data.max_concurrent_calls,
            calls_per_minute=data.calls_per_minute,
        )
    log.info("tenant created", extra={"tenant_id": row.id})
    return TenantOut.of(row)


@get("/tenants", guards=[platform_only], summary="List tenants")
async def list_tenants(api: Api) -> list[TenantOut]:
    async with api.store.session() as session:
        return [TenantOut.of(row) for row in await tenant_rows.list_tenants(session)]


@get("/tenants/{tenant_id:str}", responses=errors(404), summary="Show a tenant")
async def show_tenant(
    tenant_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> TenantOut:
    async with api.store.session() as session:
        return TenantOut.of(await tenant_or_404(session, tenant_id, user=request.user))


@put(
    "/tenants/{tenant_id:str}/quotas",
    guards=[platform_only],
    responses=errors(404),
    summary="Set a tenant's call quotas",
)
async def set_quotas(tenant_id: FromPath[str], data: JSONBody[QuotasIn], api: Api) -> TenantOut:
    async with api.store.session() as session:
        row = await tenant_or_404(session, tenant_id)
        row.max_concurrent_calls = data.max_concurrent_calls
        row.calls_per_minute = data.calls_per_minute
    log.info("tenant quotas set", extra={"tenant_id": tenant_id})
    return TenantOut.of(row)


class NumberRanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Numbers the tenant may route itself: one number, or a prefix followed by `*`."""

    ranges: Annotated[list[NumberRangeText], Meta(max_length=MAX_RANGES)]


@get(
    "/tenants/{tenant_id:str}/number-ranges",
    responses=errors(404),
    summary="A tenant's number ranges",
)
async def show_number_ranges(
    tenant_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> NumberRanges:
    async with api.store.session() as session:
        await tenant_or_404(session, tenant_id, user=request.user)
        return NumberRanges(ranges=await ranges_of(session, tenant_id))


@put(
    "/tenants/{tenant_id:str}/number-ranges",
    guards=[platform_only],
    responses=errors(404),
    summary="Set the numbers a tenant may route itself",
)
async def put_number_ranges(
    tenant_id: FromPath[str], data: JSONBody[NumberRanges], api: Api
) -> NumberRanges:
    async with api.store.session() as session:
        await tenant_or_404(session, tenant_id)
        ranges = await set_ranges(session, tenant_id, data.ranges)
    log.info("tenant number ranges set", extra={"tenant_id": tenant_id, "count": len(ranges)})
    return NumberRanges(ranges=ranges)


class AnalyticsRetention(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Days the tenant's analytics are kept in ClickHouse, in whole months (a month goes once
    all of it is older); null: kept forever."""

    days: RetentionDays | None


@get(
    "/tenants/{tenant_id:str}/analytics-retention",
    responses=errors(404),
    summary="How long a tenant's analytics are kept",
)
async def show_analytics_retention(
    tenant_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> AnalyticsRetention:
    async with api.store.session() as session:
        row = await tenant_or_404(session, tenant_id, user=request.user)
    return AnalyticsRetention(days=row.analytics_retention_days)


@put(
    "/tenants/{tenant_id:str}/analytics-retention",
    guards=[platform_only],
    responses=errors(404),
    summary="Set how long a tenant's analytics are kept",
)
async def put_analytics_retention(
    tenant_id: FromPath[str], data: JSONBody[AnalyticsRetention], api: Api
) -> AnalyticsRetention:
    async with api.store.session() as session:
        row = await tenant_or_404(session, tenant_id)
        row.analytics_retention_days = data.days
    log.info("tenant analytics retention set", extra={"tenant_id": tenant_id, "days": data.days})
    return AnalyticsRetention(days=data.days)


def tenants_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[
            create_tenant,
            list_tenants,
            show_tenant,
            set_quotas,
            show_number_ranges,
            put_number_ranges,
            show_analytics_retention,
            put_analytics_retention,
        ],
        exception_handlers=store_errors(),
        **kwargs,
    )
