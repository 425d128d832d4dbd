"""Tenants' webhooks: `GET|POST /v1/webhooks`, `DELETE /v1/webhooks/{id}`, and the events a
webhook refused: `GET /v1/webhooks/{id}/dead-letters`, `POST /v1/webhooks/{id}/dead-letters/replay`.

A webhook is an HTTPS endpoint that receives the tenant's analytics events (optionally only
some types), each POST signed with the webhook's secret (see `analytics.sinks`). The secret is
returned once, in the creation response, and never again; it is never logged, and it is stored
sealed with the node's key (`store.secrets_key`; the relay opens it to sign). URLs whose host
resolves to a loopback, private, link-local or metadata address are refused unless allowed
(`analytics.allow_private_urls`, `analytics.url_allowlist`). Every route needs a key with the
`admin` role (the platform admin key, or a tenant's admin key for its own tenant).

Dead letters list what was refused (event id, type, tries, the last error), never the payload.
Replay queues them (all, or the given ids) for one more try each by the relay; see
`analytics.relay`.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    NotFoundException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import Meta
from sqlalchemy import delete as delete_rows
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agents.urlguard import UnsafeUrlError, check_url
from control_api.acting_tenant import TENANT_IN_BODY, ActingTenant, tenant_dependency
from control_api.analytics import Analytics
from control_api.analytics.tables import DeadLetterRow, OutboxRow, RelayMarkRow, WebhookRow
from control_api.api_errors import errors
from control_api.auth import Principal, can_manage
from control_api.store import secrets as secret_rows

log = logging.getLogger(__name__)

MAX_WEBHOOKS_PER_TENANT: Final = 20
MAX_DEAD_LETTER_PAGE: Final = 200

EventType = Literal[
    "call.started",
    "call.amd",
    "transcript.final",
    "tool.called",
    "call.transferred",
    "call.ended",
    "tenant.deleted",
    "subject.erased",
    "campaign.started",
    "campaign.paused",
    "campaign.completed",
    "contact.attempted",
]
"""Every analytics event type (`analytics.events.AnalyticsEvent`'s tags), what a webhook may
filter on."""
TenantName = Annotated[str, Meta(min_length=1, max_length=64)]
AnalyticsDep = NamedDependency[Analytics]


class WebhookCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=8, max_length=2048)]
    events: Annotated[list[EventType], Meta(max_length=16)] = []
    """Event types to send; empty: all."""
    tenant: TenantName | None = None
    """The tenant to act for; only the platform admin key may name one."""


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant_id: str
    url: str
    events: list[str]
    created_at: str


class WebhookCreated(Webhook, frozen=True, kw_only=True):
    secret: str
    """The signing secret: shown this once."""


class WebhookList(msgspec.Struct, frozen=True):
    webhooks: list[Webhook]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    event_id: str
    call_id: str
    type: str
    seq: int
    attempts: int
    """Tries so far (replays included)."""
    error: str
    created_at: str
    replay_queued: bool


class DeadLetterPage(msgspec.Struct, frozen=True):
    dead_letters: list[DeadLetter]
    next_before: int | None
    """Pass as `before` for the next (older) page; null on the last page."""


class ReplayRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ids: Annotated[list[Annotated[int, Meta(ge=1)]], Meta(max_length=1000)] = []
    """Dead letters to replay; empty: all of the webhook's."""


class ReplayQueued(msgspec.Struct, frozen=True):
    queued: int


def _view(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        events=list(row.events),
        created_at=row.created_at.isoformat(),
    )


async def check_webhook_url(url: str, analytics: Analytics) -> None:
    """Raise `ValidationException` unless `url` may receive webhooks."""
    settings = analytics.settings.analytics
    if settings.webhook_require_https and not url.lower().startswith("https://"):
        raise ValidationException("webhook URLs must be https://")
    if settings.allow_private_urls:
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationException("webhook URLs must be http(s)://")
        return
    try:
        await check_url(url, settings.url_allowlist)
    except UnsafeUrlError as exc:
        raise ValidationException(f"webhook URL refused: {exc}") from exc


async def _owned(
    session: AsyncSession, webhook_id: str, request: Request[Principal, None, State]
) -> WebhookRow:
    """The webhook, if the key may act for its tenant; another tenant's id is a 404."""
    row = await session.get(WebhookRow, webhook_id)
    if row is None or not request.user.may_act_for(row.tenant_id):
        raise NotFoundException(f"no webhook {webhook_id!r}")
    return row


@get("/webhooks", summary="List the tenant's webhooks")
async def list_webhooks(analytics: AnalyticsDep, tenant_id: ActingTenant) -> WebhookList:
    async with analytics.store.session() as session:
        rows = await session.scalars(
            select(WebhookRow).where(WebhookRow.tenant_id == tenant_id).order_by(WebhookRow.id)
        )
        return WebhookList(webhooks=[_view(r) for r in rows])


@post(
    "/webhooks",
    status_code=201,
    responses=errors(400, 503),
    summary="Add a webhook",
    opt={TENANT_IN_BODY: True},
)
async def create_webhook(
    data: JSONBody[WebhookCreate], analytics: AnalyticsDep, tenant_id: ActingTenant
) -> WebhookCreated:
    """Events written from now on are sent to `url`, signed with the returned `secret`."""
    await check_webhook_url(data.url, analytics)
    try:
        box = secret_rows.box_of(analytics.store)
    except secret_rows.SecretsUnavailable as exc:
        raise ServiceUnavailableException(
            "webhooks are off on this node: it has no secrets key (store.secrets_key)"
        ) from exc
    webhook_id = f"wh_{secrets.token_hex(8)}"
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    async with analytics.store.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(WebhookRow).where(WebhookRow.tenant_id == tenant_id)
        )
        if (count or 0) >= MAX_WEBHOOKS_PER_TENANT:
            raise ValidationException(f"at most {MAX_WEBHOOKS_PER_TENANT} webhooks per tenant")
        top = await session.scalar(select(func.max(OutboxRow.id)))
        row = WebhookRow(
            id=webhook_id,
            tenant_id=tenant_id,
            url=data.url,
            events=sorted(set(data.events)),
            secret=secret_rows.seal_webhook_secret(box, webhook_id, secret),
            after_outbox_id=top or 0,
            created_at=analytics.wall(),
        )
        session.add(row)
    log.info("webhook created", extra={"tenant_id": tenant_id, "webhook_id": webhook_id})
    view = _view(row)
    return WebhookCreated(**msgspec.structs.asdict(view), secret=secret)


@delete(
    "/webhooks/{webhook_id:str}",
    status_code=204,
    responses=errors(404),
    summary="Remove a webhook",
)
async def delete_webhook(
    webhook_id: FromPath[str], request: Request[Principal, None, State], analytics: AnalyticsDep
) -> None:
    async with analytics.store.session() as session:
        row = await _owned(session, webhook_id, request)
        await session.delete(row)
        sink = f"webhook:{webhook_id}"
        await session.execute(delete_rows(RelayMarkRow).where(RelayMarkRow.sink == sink))
        await session.execute(delete_rows(DeadLetterRow).where(DeadLetterRow.sink == sink))
        tenant_id = row.tenant_id
    log.info("webhook deleted", extra={"tenant_id": tenant_id, "webhook_id": webhook_id})


@get(
    "/webhooks/{webhook_id:str}/dead-letters",
    responses=errors(404),
    summary="Events the webhook refused (newest first)",
)
async def list_dead_letters(
    webhook_id: FromPath[str],
    request: Request[Principal, None, State],
    analytics: AnalyticsDep,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_DEAD_LETTER_PAGE)] = 50,
    before: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> DeadLetterPage:
    async with analytics.store.session() as session:
        await _owned(session, webhook_id, request)
        stmt = select(DeadLetterRow).where(DeadLetterRow.sink == f"webhook:{webhook_id}")
        if before is not None:
            stmt = stmt.where(DeadLetterRow.id < before)
        rows = list(
            (await session.scalars(stmt.order_by(DeadLetterRow.id.desc()).limit(limit + 1))).all()
        )
    page = [
        DeadLetter(
            id=r.id,
            event_id=r.event_id,
            call_id=r.call_id,
            type=r.type,
            seq=r.seq,
            attempts=r.attempts,
            error=r.error,
            created_at=r.created_at.isoformat(),
            replay_queued=r.replay,
        )
        for r in rows[:limit]
    ]
    return DeadLetterPage(page, page[-1].id if len(rows) > limit else None)


@post(
    "/webhooks/{webhook_id:str}/dead-letters/replay",
    status_code=202,
    responses=errors(404),
    summary="Send dead letters again",
)
async def replay_dead_letters(
    webhook_id: FromPath[str],
    data: JSONBody[ReplayRequest],
    request: Request[Principal, None, State],
    analytics: AnalyticsDep,
) -> ReplayQueued:
    """Each queued dead letter gets one more try: delivered, it leaves the list; refused, it
    stays with its new error. Ids that are not this webhook's dead letters are a 404."""
    sink = f"webhook:{webhook_id}"
    async with analytics.store.session() as session:
        row = await _owned(session, webhook_id, request)
        stmt = update(DeadLetterRow).where(DeadLetterRow.sink == sink)
        if data.ids:
            ids = sorted(set(data.ids))
            found = await session.scalar(
                select(func.count())
                .select_from(DeadLetterRow)
                .where(DeadLetterRow.sink == sink, DeadLetterRow.id.in_(ids))
            )
            if found != len(ids):
                raise NotFoundException("some ids are not dead letters of this webhook")
            stmt = stmt.where(DeadLetterRow.id.in_(ids))
        result: Any = await session.execute(stmt.values(replay=True))
        queued = int(result.rowcount)
        tenant_id = row.tenant_id
    analytics.relay.wake()
    log.info(
        "dead letters queued for replay",
        extra={"tenant_id": tenant_id, "webhook_id": webhook_id, "queued": queued},
    )
    return ReplayQueued(queued)


def webhooks_router(analytics: Analytics, **kwargs: Any) -> Router:
    def provide() -> Analytics:
        return analytics

    kwargs.setdefault("tags", ["webhooks"])
    return Router(
        path="/v1",
        route_handlers=[
            list_webhooks,
            create_webhook,
            delete_webhook,
            list_dead_letters,
            replay_dead_letters,
        ],
        guards=[can_manage],
        dependencies={
            "analytics": Provide(provide, use_cache=True, sync_to_thread=False),
            **tenant_dependency(analytics.store),
        },
        **kwargs,
    )
