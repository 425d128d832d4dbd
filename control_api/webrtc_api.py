"""Browser call signalling: `POST /v1/webrtc/offer` answers an SDP offer and starts the call;
`DELETE /v1/calls/{call_id}` hangs a call up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from litestar import Router, post
from litestar.exceptions import (
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody
from msgspec import Meta

from control_api.acting_tenant import TENANT_IN_BODY, ActingTenant
from control_api.api_errors import errors
from control_api.auth import can_operate
from control_api.intake import http_refusal, webrtc_call
from control_api.refusals import CallRefused
from control_api.state import Api
from media.webrtc import SdpError

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


@post(
    "/webrtc/offer",
    status_code=200,
    guards=[can_operate],
    responses=errors(400, 403, 404, 429, 503, retry_after=[503]),
    summary="Call an agent over WebRTC",
    opt={TENANT_IN_BODY: True},
)
async def webrtc_offer(
    data: JSONBody[OfferRequest], api: Api, tenant_id: ActingTenant
) -> OfferAnswer:
    """Answer the offer and start the call; its events arrive on the `events` data channel."""
    try:
        call = await webrtc_call(api.host, api.webrtc, tenant_id, data.agent, data.sdp)
    except SdpError as exc:
        raise ValidationException(f"malformed SDP: {exc}") from exc
    except CallRefused as exc:
        raise http_refusal(exc) from exc
    return OfferAnswer(call_id=call.info.call_id, sdp=call.answer_sdp)


def calls_router(extra: Sequence[HTTPRouteHandler] = (), **kwargs: object) -> Router:
    """`POST /v1/webrtc/offer`, plus `extra` handlers under `/v1`."""
    return Router(path="/v1", route_handlers=[webrtc_offer, *extra], **kwargs)  # type: ignore[arg-type]
