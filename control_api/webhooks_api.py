"""Tenants' webhooks: `GET|POST /v1/webhooks`, `DELETE /v1/webhooks/{id}`.

A webhook is an HTTPS endpoint that receives the tenant's analytics events (optionally only
some types), each POST signed with the webhook's secret (see `analytics.sinks`). The secret is
returned once, in the creation response, and never again; it is never logged. URLs whose host
resolves to a loopback, private, link-local or metadata address are refused unless allowed
(`analytics.allow_private_urls`, `analytics.url_allowlist`). Every route needs a key with the
`admin` role (the platform admin key, or a tenant's admin key for its own tenant).
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
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta
from sqlalchemy import func, select

from agents.urlguard import UnsafeUrlError, check_url
from control_api.analytics import Analytics
from control_api.analytics.tables import OutboxRow, RelayMarkRow, WebhookRow
from control_api.auth import Principal, can_manage

log = logging.getLogger(__name__)

MAX_WEBHOOKS_PER_TENANT: Final = 20

EventType = Literal[
    "call.started", "transcript.final", "tool.called", "call.transferred", "call.ended"
]
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


_ERRORS = [
    ValidationException,
    NotAuthorizedException,
    PermissionDeniedException,
    NotFoundException,
]


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


@get("/webhooks", raises=_ERRORS, summary="List the tenant's webhooks")
async def list_webhooks(
    request: Request[Principal, None, State],
    analytics: AnalyticsDep,
    tenant: FromQuery[str | None] = None,
) -> WebhookList:
    tenant_id = request.user.tenant_for(tenant)
    async with analytics.store.session() as session:
        rows = await session.scalars(
            select(WebhookRow).where(WebhookRow.tenant_id == tenant_id).order_by(WebhookRow.id)
        )
        return WebhookList(webhooks=[_view(r) for r in rows])


@post("/webhooks", status_code=201, raises=_ERRORS, summary="Add a webhook")
async def create_webhook(
    data: JSONBody[WebhookCreate], request: Request[Principal, None, State], analytics: AnalyticsDep
) -> WebhookCreated:
    """Events written from now on are sent to `url`, signed with the returned `secret`."""
    tenant_id = request.user.tenant_for(data.tenant)
    await check_webhook_url(data.url, analytics)
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
            secret=secret,
            after_outbox_id=top or 0,
            created_at=analytics.wall(),
        )
        session.add(row)
    log.info("webhook created", extra={"tenant_id": tenant_id, "webhook_id": webhook_id})
    view = _view(row)
    return WebhookCreated(**msgspec.structs.asdict(view), secret=secret)


@delete("/webhooks/{webhook_id:str}", status_code=204, raises=_ERRORS, summary="Remove a webhook")
async def delete_webhook(
    webhook_id: FromPath[str], request: Request[Principal, None, State], analytics: AnalyticsDep
) -> None:
    async with analytics.store.session() as session:
        row = await session.get(WebhookRow, webhook_id)
        if row is None or not request.user.may_act_for(row.tenant_id):
            raise NotFoundException(f"no webhook {webhook_id!r}")
        await session.delete(row)
        marks = await session.scalars(
            select(RelayMarkRow).where(RelayMarkRow.sink == f"webhook:{webhook_id}")
        )
        for mark in marks:
            await session.delete(mark)
        tenant_id = row.tenant_id
    log.info("webhook deleted", extra={"tenant_id": tenant_id, "webhook_id": webhook_id})


def webhooks_router(analytics: Analytics, **kwargs: Any) -> Router:
    def provide() -> Analytics:
        return analytics

    kwargs.setdefault("tags", ["webhooks"])
    return Router(
        path="/v1",
        route_handlers=[list_webhooks, create_webhook, delete_webhook],
        guards=[can_manage],
        dependencies={"analytics": Provide(provide, use_cache=True, sync_to_thread=False)},
        **kwargs,
    )
