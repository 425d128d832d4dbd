"""Browser call signalling: `POST /v1/webrtc/offer` answers an SDP offer and starts the call;
`DELETE /v1/calls/{call_id}` hangs a call up."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from litestar import Request, Router, post
from litestar.datastructures import State
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody
from msgspec import Meta

from control_api.auth import Principal, can_operate
from control_api.host import OverCapacity
from control_api.metrics import CALLS_REFUSED
from control_api.quotas import QuotaExceeded
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
    TooManyRequestsException,
]


@post(
    "/webrtc/offer",
    status_code=200,
    guards=[can_operate],
    raises=_ERRORS,
    summary="Call an agent over WebRTC",
)
async def webrtc_offer(
    data: JSONBody[OfferRequest], request: Request[Principal, None, State], api: Api
) -> OfferAnswer:
    """Answer the offer and start the call; its events arrive on the `events` data channel."""
    tenant = request.user.tenant_for(data.tenant)
    agent = await api.host.find_agent(tenant, data.agent)
    if agent is None:
        raise NotFoundException(f"no agent {data.agent!r} for tenant {tenant!r}")
    try:
        check_offer(data.sdp)
    except SdpError as exc:
        raise ValidationException(f"malformed SDP: {exc}") from exc
    call_id = uuid.uuid4().hex
    try:
        await api.host.admit_for(tenant, call_id)
    except (OverCapacity, QuotaExceeded) as exc:
        CALLS_REFUSED.labels(reason=exc.reason).inc()
        log.info("call refused", extra={"tenant_id": tenant, "reason": exc.reason})
        headers = {"Retry-After": str(exc.retry_after_s)}
        if isinstance(exc, OverCapacity):
            raise ServiceUnavailableException(
                f"call refused: {exc.reason}", headers=headers
            ) from exc
        raise TooManyRequestsException(f"call refused: {exc}", headers=headers) from exc
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
        api.calls.start(call, agent.pinned)
    except BaseException:
        await call.close("not started")
        api.host.release(call_id)
        raise
    return OfferAnswer(call_id=call_id, sdp=call.answer_sdp)


def calls_router(extra: Sequence[HTTPRouteHandler] = (), **kwargs: object) -> Router:
    """`POST /v1/webrtc/offer`, plus `extra` handlers under `/v1`."""
    return Router(path="/v1", route_handlers=[webrtc_offer, *extra], **kwargs)  # type: ignore[arg-type]
