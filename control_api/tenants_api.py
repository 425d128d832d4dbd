"""Tenants (platform admin key only) and what every tenant-scoped route shares: the `?tenant=`
parameter (resolved by `control_api.acting_tenant`), store errors as 404/409.

`POST /v1/tenants {"name"}` → `{"id", "name", ...}`; `GET /v1/tenants`;
`GET /v1/tenants/{id}` (the platform admin, or any key of that tenant);
`PUT /v1/tenants/{id}/quotas {"max_concurrent_calls", "calls_per_minute"}` (null: no limit);
`GET|PUT /v1/tenants/{id}/number-ranges {"ranges": ["+1555123*", "support"]}`: the numbers the
tenant may route itself (PUT: platform admin only; GET: also the tenant's keys);
`GET|PUT /v1/tenants/{id}/analytics-retention {"days": 90}` (null: kept forever): how long the
tenant's ClickHouse analytics are kept (`control_api.analytics.retention` drops its months past
it; PUT: platform admin only; GET: also the tenant's keys);
`GET|PUT /v1/tenants/{id}/recording-retention {"days": 30}` (0: kept; null: the node's
`recording.retention_days`): how long the tenant's call recordings are kept
(`control_api.recordings.retention`; PUT: platform admin only; GET: also the tenant's keys).

`DELETE /v1/tenants/{id}` (platform admin only) erases the tenant and everything the node keeps
of it: its recordings (through the recording store), then in one transaction every row of it in
the store (`store.tenants.erase_tenant`: keys, agents and their versions, numbers and ranges,
secrets, policies, calls with their transcripts, outbox events delivered or not, dead letters,
webhooks, campaigns and contacts, ...), with a `tenant.deleted` event in the outbox for the
stores downstream. It is refused (409) while the tenant has calls: live on this node (its
quota's count, calls being set up included) or open in the store (another node's; a node that
stopped closes its own when it starts again). The deletion is logged as an audit record
(`tenant deleted`: the tenant, the key, the counts). A recording store that fails is a 503, and
then nothing of the store was erased (what recordings went, went): try again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ExceptionHandlersMap
from msgspec import Meta
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.analytics.events import TenantDeletedEvent, iso
from control_api.analytics.outbox import write_events
from control_api.analytics.tables import CallRow
from control_api.api_errors import errors
from control_api.auth import Principal, platform_only
from control_api.host import CallHost
from control_api.number_ranges import MAX_RANGES, NumberRangeText, ranges_of, set_ranges
from control_api.recordings.store import ID_PATTERN, RecordingStore
from control_api.state import Api, ApiState
from control_api.store import tenants as tenant_rows
from control_api.store.errors import Conflict, NotFound
from control_api.store.models import Tenant, utcnow
from core.errors import StoreError

log = logging.getLogger(__name__)

TenantId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DisplayName = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Limit = Annotated[int, Meta(ge=0, le=1_000_000)]
RetentionDays = Annotated[int, Meta(ge=1, le=3660)]
"""A day to ten years."""
RecordingDays = Annotated[int, Meta(ge=0, le=3660)]
"""Up to ten years; 0: kept."""

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


@asynccontextmanager
async def tenant_session(
    api: ApiState, tenant_id: str, user: Principal | None = None
) -> AsyncIterator[tuple[AsyncSession, Tenant]]:
    """A unit of work on the tenant `tenant_id` (`tenant_or_404`: 404 when there is none, or
    when `user`, if given, may not act for it): what a tenant's settings routes share."""
    async with api.store.session() as session:
        yield session, await tenant_or_404(session, tenant_id, user=user)


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
    async with tenant_session(api, tenant_id) as (_, row):
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
    async with tenant_session(api, tenant_id, request.user) as (session, _):
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
    async with tenant_session(api, tenant_id) as (session, _):
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
    async with tenant_session(api, tenant_id, request.user) as (_, row):
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
    async with tenant_session(api, tenant_id) as (_, row):
        row.analytics_retention_days = data.days
    log.info("tenant analytics retention set", extra={"tenant_id": tenant_id, "days": data.days})
    return AnalyticsRetention(days=data.days)


class RecordingRetention(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Days the tenant's call recordings are kept after they are stored (0: kept); null: as
    the node's `recording.retention_days` says."""

    days: RecordingDays | None


@get(
    "/tenants/{tenant_id:str}/recording-retention",
    responses=errors(404),
    summary="How long a tenant's call recordings are kept",
)
async def show_recording_retention(
    tenant_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> RecordingRetention:
    async with tenant_session(api, tenant_id, request.user) as (session, _):
        return RecordingRetention(days=await tenant_rows.recording_days(session, tenant_id))


@put(
    "/tenants/{tenant_id:str}/recording-retention",
    guards=[platform_only],
    responses=errors(404),
    summary="Set how long a tenant's call recordings are kept",
)
async def put_recording_retention(
    tenant_id: FromPath[str], data: JSONBody[RecordingRetention], api: Api
) -> RecordingRetention:
    async with tenant_session(api, tenant_id) as (session, _):
        await tenant_rows.set_recording_days(session, tenant_id, data.days)
    log.info("tenant recording retention set", extra={"tenant_id": tenant_id, "days": data.days})
    return data


class TenantDeleted(msgspec.Struct, frozen=True):
    id: str
    deleted: dict[str, int]
    """Rows erased per store table (those that had some), and `recordings`: how many."""


async def _refuse_if_live(api: ApiState, session: AsyncSession, tenant_id: str) -> None:
    """`Conflict` (409) while the tenant has calls: on this node (admitted, being set up
    included) or not ended in the store (on any node)."""
    open_calls = await session.scalar(
        select(func.count(CallRow.id)).where(
            CallRow.tenant_id == tenant_id, CallRow.ended_at.is_(None)
        )
    )
    live = api.quotas.active(tenant_id) + int(open_calls or 0)
    if live:
        raise Conflict(f"the tenant has {live} live call(s): end them, then delete it")


async def _erase_recordings(host: CallHost, tenant_id: str) -> int:
    """Delete the tenant's recordings from the node's recording store; how many there were."""
    live = getattr(host, "recordings", None)
    if live is None or not ID_PATTERN.match(tenant_id):  # no recording can be kept under it
        return 0
    store: RecordingStore = live.store
    try:
        gone = [await store.delete(rec.key) for rec in await store.list(tenant_id)]
    except (StoreError, OSError) as exc:
        log.error(
            "tenant's recordings not deleted; the tenant is kept",
            extra={"tenant_id": tenant_id, "error": type(exc).__name__},
        )
        raise ServiceUnavailableException(
            "the recording store failed; the tenant was not deleted: try again"
        ) from exc
    return sum(gone)


@delete(
    "/tenants/{tenant_id:str}",
    guards=[platform_only],
    status_code=200,
    responses=errors(404, 409, 503),
    summary="Delete a tenant and everything kept of it",
)
async def delete_tenant(
    tenant_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> TenantDeleted:
    async with tenant_session(api, tenant_id) as (session, _):
        await _refuse_if_live(api, session, tenant_id)
    recordings = await _erase_recordings(api.host, tenant_id)
    async with tenant_session(api, tenant_id) as (session, _):
        await _refuse_if_live(api, session, tenant_id)  # one came in while recordings went
        counts = await tenant_rows.erase_tenant(session, tenant_id)
        counts["recordings"] = recordings
        stream = f"del_{uuid.uuid4().hex}"
        event = TenantDeletedEvent(
            id=f"{stream}:0", call_id=stream, tenant_id=tenant_id, seq=0, at=iso(utcnow()),
            deleted=counts,
        )  # fmt: skip
        await write_events(session, [event], api.settings.node.name)
    log.info(
        "tenant deleted",
        extra={
            "audit": True,
            "tenant_id": tenant_id,
            "key_id": request.user.key_id or "platform-admin",
            "deleted": counts,
        },
    )
    return TenantDeleted(id=tenant_id, deleted=counts)


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
            show_recording_retention,
            put_recording_retention,
            delete_tenant,
        ],
        exception_handlers=store_errors(),
        **kwargs,
    )
