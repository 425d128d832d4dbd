"""Call control: place an outbound call (`POST /v1/calls`), hang up and transfer live calls.

`POST /v1/calls {"agent", "to", "via"}` hands the call to the node's dialer for `via`
("sip": through the SIP trunk; "asterisk": AMI Originate). With an `Idempotency-Key` header,
a retried request answers the call it placed the first time (per tenant, for
`IDEMPOTENCY_TTL_S`). The call then runs like an inbound one; its events arrive on
`WS /v1/events` and in the history.

Where calls and transfers may go is the operator's `[dialplan]` (`media.dialplan`, held by
`LiveCalls.dialplan`): a target that is not a destination is 400, one outside the tenant's
plan 403, a tenant over its outbound calls per minute 429 with Retry-After — all before any
dialer, SIP request or AMI action. Failures answer fixed texts, never the far end's.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from typing import Annotated, Final, Literal

import msgspec
from litestar import Request, delete, post
from litestar.datastructures import State
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from agents.spec import RecordingMode
from control_api.acting_tenant import TENANT_IN_BODY, ActingTenant
from control_api.api_errors import errors
from control_api.auth import Principal, can_operate
from control_api.host import Dialer, DialError
from control_api.intake import http_refusal
from control_api.metrics import CALLS_REFUSED
from control_api.refusals import CallRefused
from control_api.state import Api
from core.destination import Destination
from media.call import CallControlError
from media.dialplan import DestinationInvalid, DestinationRefused, DialGuard, RateLimited

log = logging.getLogger(__name__)

Name = Annotated[str, Meta(min_length=1, max_length=128)]
IDEMPOTENCY_TTL_S: Final = 24 * 3600
IDEMPOTENCY_MAX: Final = 10_000


class PlaceCall(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    agent: Name
    to: Annotated[str, Meta(min_length=1, max_length=256)]
    """An E.164 number (`+15551234567`, dialled through the trunk), a SIP URI
    (`sip:100@pbx.example.com`) or an extension; the operator's dial plan must allow it."""
    via: Literal["sip", "asterisk"] = "sip"
    tenant: Name | None = None
    """The tenant to act for; only the platform admin key may name one."""
    recording: RecordingMode | None = None
    """Record this call (`on`, `on_consent`: the agent's disclosure line first) or not (`off`),
    whatever its agent's `recording` says; absent: as the agent says."""


class PlacedCall(msgspec.Struct, frozen=True):
    call_id: str
    status: Literal["dialing"] = "dialing"


class Transfer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: Annotated[str, Meta(min_length=1, max_length=256)]
    """An E.164 number, a SIP URI or an extension/queue name the dial plan allows."""


class _Idempotency:
    """Recent `(tenant, Idempotency-Key)` → call id, bounded and expiring."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def get(self, tenant: str, key: str) -> str | None:
        now = time.monotonic()
        while self._seen:
            first = next(iter(self._seen.values()))
            if now - first[0] < IDEMPOTENCY_TTL_S and len(self._seen) <= IDEMPOTENCY_MAX:
                break
            self._seen.popitem(last=False)
        hit = self._seen.get((tenant, key))
        return hit[1] if hit else None

    def put(self, tenant: str, key: str, call_id: str) -> None:
        self._seen[(tenant, key)] = (time.monotonic(), call_id)


_IDEMPOTENCY = _Idempotency()


def _allowed(guard: DialGuard, tenant: str, target: str) -> Destination:
    """The destination, if the tenant's dial plan allows it: else 400 (malformed) or 403."""
    try:
        return guard.check(tenant, target)
    except DestinationInvalid as exc:
        raise ValidationException(f"invalid destination: {exc}") from None
    except DestinationRefused as exc:
        raise PermissionDeniedException(str(exc)) from None


@post(
    "/calls",
    status_code=201,
    guards=[can_operate],
    responses=errors(400, 403, 404, 429, 502, 503, retry_after=[503]),
    summary="Place a call",
    opt={TENANT_IN_BODY: True},
)
async def place_call(
    data: JSONBody[PlaceCall],
    request: Request[Principal, None, State],
    api: Api,
    tenant_id: ActingTenant,
) -> PlacedCall:
    """Dial `to` and connect the answered call to `agent`."""
    key = request.headers.get("idempotency-key")
    if key is not None:
        if not 1 <= len(key) <= 128:
            raise ValidationException("Idempotency-Key must be 1 to 128 characters")
        if (earlier := _IDEMPOTENCY.get(tenant_id, key)) is not None:
            return PlacedCall(call_id=earlier)
    agent = await api.host.find_agent(tenant_id, data.agent)
    if agent is None:
        raise NotFoundException(f"no agent {data.agent!r} for tenant {tenant_id!r}")
    dialer = api.host.dialers.get(data.via)
    if dialer is None:
        raise ServiceUnavailableException(f"outbound calls via {data.via!r} are not configured")
    guard = api.calls.dialplan
    to = str(_allowed(guard, tenant_id, data.to))
    try:
        guard.take_call(tenant_id)
    except RateLimited as exc:
        CALLS_REFUSED.labels(reason="dialplan_calls_per_minute").inc()
        raise TooManyRequestsException(
            str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    call_id = uuid.uuid4().hex
    if data.recording is not None:
        api.host.record_call(call_id, data.recording)
    try:
        await _dial(dialer, call_id, tenant_id, agent.pinned, to)
    except BaseException:
        api.host.release(call_id)  # (idempotent) forgets the recording choice of a call not placed
        raise
    if key is not None:
        _IDEMPOTENCY.put(tenant_id, key, call_id)
    log.info("outbound call placed", extra={"call_id": call_id, "tenant_id": tenant_id})
    return PlacedCall(call_id=call_id)


async def _dial(dialer: Dialer, call_id: str, tenant_id: str, agent: str, to: str) -> None:
    """Place the call; a refusal or a dial error as the HTTP answer it gets."""
    try:
        await dialer.dial(call_id=call_id, tenant_id=tenant_id, agent=agent, to=to)
    except CallRefused as exc:  # counted and logged by the dialer's intake
        raise http_refusal(exc) from exc
    except DialError as exc:
        if exc.status == 400:
            raise ValidationException(str(exc)) from exc
        raise HTTPException(str(exc), status_code=exc.status) from exc


def _live(call_id: str, request: Request[Principal, None, State], api: Api) -> None:
    call = api.calls.get(call_id)
    if call is None or not request.user.may_act_for(call.info.tenant_id):
        raise NotFoundException(f"no live call {call_id!r}")


@delete(
    "/calls/{call_id:str}",
    status_code=204,
    guards=[can_operate],
    responses=errors(404),
    summary="Hang up a call",
)
async def hangup_call(
    call_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> None:
    _live(call_id, request, api)
    await api.calls.hangup(call_id)


@post(
    "/calls/{call_id:str}/hangup",
    status_code=204,
    guards=[can_operate],
    responses=errors(404),
    summary="Hang up a call",
)
async def hangup_call_action(
    call_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> None:
    _live(call_id, request, api)
    await api.calls.hangup(call_id)


@post(
    "/calls/{call_id:str}/transfer",
    status_code=204,
    guards=[can_operate],
    responses=errors(400, 403, 404, 409),
    summary="Blind-transfer a call",
)
async def transfer_call(
    call_id: FromPath[str],
    data: JSONBody[Transfer],
    request: Request[Principal, None, State],
    api: Api,
) -> None:
    """Transfer to `target` if the tenant's dial plan allows it (400: malformed, 403: not
    allowed, 409: the transfer did not complete)."""
    _live(call_id, request, api)
    call = api.calls.get(call_id)
    assert call is not None
    _allowed(api.calls.dialplan, call.info.tenant_id, data.target)
    try:
        await api.calls.transfer(call_id, data.target)
    except (DestinationInvalid, DestinationRefused) as exc:  # the plan changed meanwhile
        raise PermissionDeniedException(str(exc)) from None
    except CallControlError as exc:
        raise ClientException(f"transfer failed: {exc}", status_code=409) from None


CALL_CONTROL = [place_call, hangup_call, hangup_call_action, transfer_call]
"""Handlers on `/v1/calls...`; they join the history router when analytics is on."""
