"""Browser call signalling: `POST /v1/webrtc/offer` answers an SDP offer and starts the call;
`DELETE /v1/calls/{call_id}` hangs a call up."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

import msgspec
from litestar import Request, Router, delete, post
from litestar.datastructures import State
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from control_api.auth import Principal
from control_api.host import OverCapacity
from control_api.metrics import CALLS_REFUSED
from control_api.state import Api
from media.call import CallInfo, Direction
from media.webrtc import SdpError, answer_offer
from media.webrtc_sdp import check_offer

log = logging.getLogger(__name__)

Name = Annotated[str, Meta(min_length=1, max_length=128)]


class OfferRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A browser's SDP offer (ICE candidates gathered, no trickle) for a call to `agent`."""

    agent: Name
    sdp: Annotated[str, Meta(max_length=65_536)]
    type: Literal["offer"]
    tenant: Name | None = None
    """The tenant to act for; only the platform admin key may name one (default `demo`)."""


class OfferAnswer(msgspec.Struct, frozen=True):
    call_id: str
    sdp: str
    type: Literal["answer"] = "answer"


_ERRORS = [
    ValidationException,
    NotAuthorizedException,
    PermissionDeniedException,
    NotFoundException,
    ServiceUnavailableException,
]


@post("/webrtc/offer", status_code=200, raises=_ERRORS, summary="Call an agent over WebRTC")
async def webrtc_offer(
    data: JSONBody[OfferRequest], request: Request[Principal, None, State], api: Api
) -> OfferAnswer:
    """Answer the offer and start the call; its events arrive on the `events` data channel."""
    tenant = request.user.tenant_for(data.tenant)
    if not api.host.has_agent(tenant, data.agent):
        raise NotFoundException(f"no agent {data.agent!r} for tenant {tenant!r}")
    try:
        check_offer(data.sdp)
    except SdpError as exc:
        raise ValidationException(f"malformed SDP: {exc}") from exc
    call_id = uuid.uuid4().hex
    try:
        api.host.admit(call_id)
    except OverCapacity as exc:
        CALLS_REFUSED.labels(reason=exc.reason).inc()
        log.info("call refused", extra={"tenant_id": tenant, "reason": exc.reason})
        raise ServiceUnavailableException(
            f"call refused: {exc.reason}", headers={"Retry-After": str(exc.retry_after_s)}
        ) from exc
    info = CallInfo(
        call_id=call_id,
        tenant_id=tenant,
        direction=Direction.INBOUND,
        from_uri="webrtc:browser",
        to_uri=f"agent:{data.agent}",
        transport="webrtc",
    )
    try:
        call = await answer_offer(data.sdp, info, api.webrtc)
    except SdpError as exc:
        api.host.release(call_id)
        raise ValidationException(f"malformed SDP: {exc}") from exc
    except BaseException:
        api.host.release(call_id)
        raise
    try:
        api.calls.start(call, data.agent)
    except BaseException:
        await call.close("not started")
        api.host.release(call_id)
        raise
    return OfferAnswer(call_id=call_id, sdp=call.answer_sdp)


@delete("/calls/{call_id:str}", status_code=204, raises=_ERRORS, summary="Hang up a call")
async def hangup_call(
    call_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> None:
    call = api.calls.get(call_id)
    if call is None or not request.user.may_act_for(call.info.tenant_id):
        raise NotFoundException(f"no live call {call_id!r}")
    await api.calls.hangup(call_id)


def calls_router(**kwargs: object) -> Router:
    return Router(path="/v1", route_handlers=[webrtc_offer, hangup_call], **kwargs)  # type: ignore[arg-type]
