"""Campaigns over HTTP (issue 17), for the acting tenant only (another tenant's campaign is a
404): `POST /v1/campaigns` creates a draft (the `model.CampaignIn` body; every number checked
against the tenant's dial plan, the agent must be the tenant's), `GET /v1/campaigns` lists
them newest first, `GET /v1/campaigns/{id}` shows one with its progress, `GET
/v1/campaigns/{id}/contacts?status=&limit=&cursor=` pages its contacts with their attempts,
`POST /v1/campaigns/{id}/contacts` adds contacts to a draft from a CSV file
(`control_api.contacts_upload_api`), and `POST /v1/campaigns/{id}/start|pause|resume|cancel`
moves it through its lifecycle under the campaign's row lock (409 on a move its state does
not allow, `extra.reason` "state"). A campaign may be created without contacts and filled by
CSV uploads; starting one with none is a 409 too (`extra.reason` "no_contacts"), nothing changed.

Creating and moving need an `operator` (or `admin`) key, reading any key. Nothing here dials:
the node's dialler (`voicenode.dialler`) places a running campaign's calls; a move writes its
event (`campaign.started`, `campaign.paused`, `campaign.completed` for a cancel) into the
outbox with the move and wakes the node's dialler (`campaigns.notify`). A contact on the
tenant's do-not-call list is stored ended as do_not_call (`campaigns.dnc`), never dialled.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Router, get, post
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from control_api.acting_tenant import TENANT_MUST_EXIST, ActingTenant
from control_api.api_errors import errors
from control_api.auth import can_operate
from control_api.campaigns import dnc, notify, queries, rows
from control_api.campaigns.lifecycle import Action, CampaignState, TransitionRefused
from control_api.campaigns.model import CampaignIn, CampaignSettings, read_settings
from control_api.contacts_upload_api import upload_contacts
from control_api.number_ranges import may_present
from control_api.state import Api, ApiState
from control_api.tenants_api import store_errors, utc
from media.dialplan import DestinationInvalid, DestinationRefused, DialGuard

log = logging.getLogger(__name__)

MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 50
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[
    str | None,
    QueryParameter(description="The `next_cursor` of the page before (opaque; 400 if not)"),
]

ContactCursor = Annotated[
    str | None,
    QueryParameter(description="The `next_cursor` of the page before", pattern=r"^[0-9]{1,18}$"),
]


class Progress(msgspec.Struct, frozen=True):
    contacts: int
    by_status: dict[str, int]
    """Contacts by status: pending, dialing, retrying, done (each named, 0 included)."""
    by_disposition: dict[str, int]
    """Contacts dialled, by their last attempt's disposition."""


class CampaignSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    state: str
    agent: str
    via: str
    created_at: datetime


class CampaignOut(CampaignSummary, frozen=True, kw_only=True):
    settings: CampaignSettings
    """The campaign as created, without its contacts."""
    progress: Progress


class CampaignPage(msgspec.Struct, frozen=True):
    campaigns: list[CampaignSummary]
    next_cursor: str | None = None


class AttemptOut(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    disposition: str | None
    call_id: str | None
    """The call record of the attempt (`GET /v1/calls/{id}`), once it has one."""


class ContactOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    number: str
    variables: dict[str, str]
    status: queries.ContactStatus
    attempts: int
    disposition: str | None
    last_attempt_at: datetime | None
    next_eligible_at: datetime | None
    history: list[AttemptOut]


class ContactPage(msgspec.Struct, frozen=True):
    contacts: list[ContactOut]
    next_cursor: str | None = None


def _maybe(at: datetime | None) -> datetime | None:
    return utc(at) if at is not None else None


def _summary(row: rows.CampaignRow) -> dict[str, Any]:
    settings = read_settings(row.body)
    return {
        "id": row.id,
        "name": row.name,
        "state": row.state,
        "agent": settings.agent,
        "via": settings.via,
        "created_at": utc(row.created_at),
    }


async def _out(api: ApiState, tenant_id: str, row: rows.CampaignRow) -> CampaignOut:
    async with api.store.session() as session:
        by_status, by_disposition = await queries.progress(session, tenant_id, row.id)
    return CampaignOut(
        **_summary(row),
        settings=read_settings(row.body),
        progress=Progress(sum(by_status.values()), by_status, by_disposition),
    )


def _check_numbers(guard: DialGuard, tenant_id: str, campaign: CampaignIn) -> None:
    """403 naming every contact whose number the tenant's dial plan does not allow."""
    refused = []
    for index, contact in enumerate(campaign.contacts):
        try:
            guard.check(tenant_id, contact.number)
        except (DestinationInvalid, DestinationRefused) as exc:
            refused.append({"key": f"$.contacts[{index}].number", "message": str(exc)})
    if refused:
        first = refused[0]
        raise PermissionDeniedException(
            f"{len(refused)} contact(s) outside the dial plan, "
            f"first {first['key']}: {first['message']}",
            extra=refused,
        )


@post(
    "/campaigns",
    status_code=201,
    guards=[can_operate],
    responses=errors(403, 404),
    summary="Create a campaign (a draft)",
)
async def create_campaign(
    data: JSONBody[CampaignIn], api: Api, tenant_id: ActingTenant
) -> CampaignOut:
    """Stores the campaign and its contacts as a draft; `start` runs it. `contacts` may be
    empty or left out: the draft is then filled by CSV uploads before its start."""
    if await api.host.find_agent(tenant_id, data.agent) is None:
        raise NotFoundException(f"agent: no agent {data.agent!r}")
    _check_numbers(api.calls.dialplan, tenant_id, data)
    async with api.store.session() as session:
        if data.from_ is not None and not await may_present(session, tenant_id, data.from_):
            raise PermissionDeniedException(
                "from: not one of the tenant's numbers or number ranges"
            )
        campaign_id = await rows.create_campaign(session, tenant_id, data, datetime.now(UTC))
        await dnc.mark_contacts(session, tenant_id, campaign_id)
        row = await queries.get_campaign(session, tenant_id, campaign_id)
    assert row is not None
    log.info(
        "campaign created",
        extra={"tenant_id": tenant_id, "campaign_id": campaign_id, "contacts": len(data.contacts)},
    )
    return await _out(api, tenant_id, row)


def _encode_cursor(row: rows.CampaignRow) -> str:
    raw = json.dumps([utc(row.created_at).isoformat(), row.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, campaign_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if not isinstance(campaign_id, str) or when.tzinfo is None:
            raise ValueError("bad cursor")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValidationException("malformed cursor") from exc
    return when, campaign_id


@get("/campaigns", responses=errors(400), summary="List campaigns")
async def list_campaigns(
    api: Api, tenant_id: ActingTenant, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> CampaignPage:
    """Newest first."""
    before = _decode_cursor(cursor) if cursor is not None else None
    async with api.store.session() as session:
        found = await queries.list_campaigns(session, tenant_id, limit=limit + 1, before=before)
    page = found[:limit]
    return CampaignPage(
        campaigns=[CampaignSummary(**_summary(r)) for r in page],
        next_cursor=_encode_cursor(page[-1]) if len(found) > limit else None,
    )


@get("/campaigns/{campaign_id:str}", responses=errors(404), summary="A campaign and its progress")
async def show_campaign(
    campaign_id: FromPath[str], api: Api, tenant_id: ActingTenant
) -> CampaignOut:
    async with api.store.session() as session:
        row = await queries.get_campaign(session, tenant_id, campaign_id)
    if row is None:
        raise NotFoundException(f"no campaign {campaign_id!r}")
    return await _out(api, tenant_id, row)


def _contact(row: rows.ContactRow, history: list[rows.AttemptRow]) -> ContactOut:
    return ContactOut(
        id=row.id,
        number=row.number,
        variables=dict(row.variables),
        status=queries.status_of(row),
        attempts=row.attempts,
        disposition=row.disposition,
        last_attempt_at=_maybe(row.last_attempt_at),
        next_eligible_at=_maybe(row.next_eligible_at),
        history=[
            AttemptOut(
                attempt=a.attempt,
                started_at=utc(a.started_at),
                ended_at=_maybe(a.ended_at),
                disposition=a.disposition,
                call_id=a.call_id,
            )
            for a in history
        ],
    )


@get(
    "/campaigns/{campaign_id:str}/contacts",
    responses=errors(400, 404),
    summary="A campaign's contacts and their attempts",
)
async def list_contacts(
    campaign_id: FromPath[str],
    api: Api,
    tenant_id: ActingTenant,
    status: FromQuery[queries.ContactStatus | None] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: ContactCursor = None,
) -> ContactPage:
    """In the order they were given; `status` keeps one status."""
    after = int(cursor) if cursor is not None else None
    async with api.store.session() as session:
        if await queries.get_campaign(session, tenant_id, campaign_id) is None:
            raise NotFoundException(f"no campaign {campaign_id!r}")
        found = await queries.contacts_page(
            session, tenant_id, campaign_id, status=status, limit=limit + 1, after=after
        )
        page = found[:limit]
        history = await queries.attempts_of(session, tenant_id, [r.id for r in page])
    return ContactPage(
        contacts=[_contact(r, history[r.id]) for r in page],
        next_cursor=str(page[-1].id) if len(found) > limit else None,
    )


REFUSED_BY_STATE: Final = '409 (`extra.reason` "state"): the campaign\'s state does not allow it'
REFUSED_EMPTY: Final = '; 409 (`extra.reason` "no_contacts"): the campaign has no contacts'


def _refusals(action: Action) -> str:
    """The route's description: when it answers 409 (nothing changes then)."""
    return REFUSED_BY_STATE + (REFUSED_EMPTY if action is Action.START else "") + "."


def _mover(action: Action) -> HTTPRouteHandler:
    """The route `POST /v1/campaigns/{id}/<action>`."""

    @post(
        f"/campaigns/{{campaign_id:str}}/{action.value}",
        status_code=200,
        guards=[can_operate],
        responses=errors(404, 409),
        summary=f"{action.value.capitalize()} a campaign",
        description=_refusals(action),
        operation_id=f"{action.value.capitalize()}Campaign",
        name=f"campaign-{action.value}",
    )
    async def handler(campaign_id: FromPath[str], api: Api, tenant_id: ActingTenant) -> CampaignOut:
        try:
            async with api.store.session() as session:
                row = await queries.move(session, tenant_id, campaign_id, action)
                if row is not None:  # its event in the same transaction as the move
                    state = CampaignState(row.state)
                    event = notify.moved(tenant_id, campaign_id, action, state, datetime.now(UTC))
                    await notify.emit(session, [event], api.settings.node.name)
        except TransitionRefused as exc:
            raise HTTPException(str(exc), status_code=409, extra={"reason": exc.reason}) from None
        if row is None:
            raise NotFoundException(f"no campaign {campaign_id!r}")
        notify.ring(api.host)  # the node's dialler looks again now
        log.info(
            "campaign state changed",
            extra={"tenant_id": tenant_id, "campaign_id": campaign_id, "state": row.state},
        )
        return await _out(api, tenant_id, row)

    return handler


MOVES: Final = (Action.START, Action.PAUSE, Action.RESUME, Action.CANCEL)


def campaigns_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[
            create_campaign,
            list_campaigns,
            show_campaign,
            list_contacts,
            upload_contacts,
            *(_mover(action) for action in MOVES),
        ],
        exception_handlers=store_errors(),
        opt={TENANT_MUST_EXIST: True},
        **kwargs,
    )
