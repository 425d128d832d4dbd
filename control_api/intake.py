"""Getting a call in: admit it, refuse it, start it, and release it on every other path.

Every transport takes calls the same way (the SIP user agent and dialer, the AudioSocket
router, Asterisk originate in `voicenode`; WebRTC here, for `POST /v1/webrtc/offer`):

    info = CallInfo(...)                       # after routing: the tenant and agent are known
    async with intake.admit(host, info) as ticket:
        call = ...                             # answer or place the call
        ticket.start(call, agent)              # LiveCalls owns it (and its release) from here

Admission is the node's (capacity, loading, draining, engines saturated: `EngineSaturated`
while one more call would push the projected voice-to-voice p95 over `node.slo_v2v_ms`) then
the tenant's quota; a refusal is counted in `voicenode_calls_refused_total{reason}`, logged,
and raised as a `CallRefused`, which each transport answers through
`control_api.refusals.answer_for`. The ticket gives the admission back when the block is left
without a start (an exception, a cancellation, a failed start); `keep()` hands it on to code
that starts or releases it later (a call still ringing).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

from litestar.exceptions import HTTPException

from control_api.calls import LiveCall
from control_api.host import CallIntake
from control_api.metrics import CALLS_REFUSED
from control_api.refusals import CallRefused, ShuttingDown, UnknownRoute, answer_for
from media.call import CallInfo, Direction
from media.webrtc import WebRtcCall, WebRtcOptions, answer_offer
from media.webrtc_sdp import check_offer

__all__ = ["CallIntake", "Ticket", "admit", "hold", "http_refusal", "webrtc_call"]

log = logging.getLogger(__name__)

REFUSED_LOG: Final = {"sip": "sip call refused", "audiosocket": "audiosocket call refused"}
"""The log line of a refused call, by transport (others: "call refused")."""


@dataclass(eq=False)
class Ticket:
    """One admitted call's slots, held until the call starts or the ticket is released."""

    _host: CallIntake
    info: CallInfo
    _held: bool = field(default=True, init=False)

    @property
    def held(self) -> bool:
        return self._held

    def start(self, call: LiveCall, agent: str) -> asyncio.Task[None]:
        """Run the call in `LiveCalls`, which releases it when it ends. A node shutting down
        raises `ShuttingDown` and the ticket is released."""
        if not self._held:
            raise RuntimeError(f"call {self.info.call_id} is not held by this ticket")
        try:
            task = self._host.calls.start(call, agent)
        except RuntimeError as exc:
            self.release()
            raise ShuttingDown() from exc
        self._held = False
        return task

    def keep(self) -> Ticket:
        """Hand the admission on: this ticket lets go, the one returned holds it."""
        if not self._held:
            raise RuntimeError(f"call {self.info.call_id} is not held by this ticket")
        self._held = False
        return Ticket(self._host, self.info)

    def release(self) -> None:
        """Give the admission back unless the call started (idempotent)."""
        if self._held:
            self._held = False
            self._host.release(self.info.call_id)

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


@asynccontextmanager
async def admit(host: CallIntake, info: CallInfo) -> AsyncIterator[Ticket]:
    """Admit `info`'s call for its tenant (or count, log and raise the `CallRefused`); the
    ticket is released on leaving the block unless the call started or was kept."""
    try:
        await host.admit_for(info.tenant_id, info.call_id)
    except CallRefused as exc:
        CALLS_REFUSED.labels(reason=exc.reason).inc()
        extra = {"tenant_id": info.tenant_id, "reason": exc.reason}
        log.info(REFUSED_LOG.get(info.transport, "call refused"), extra=extra)
        raise
    async with Ticket(host, info) as ticket:
        yield ticket


async def hold(host: CallIntake, info: CallInfo) -> Ticket:
    """`admit` for an admission that outlives the caller (a call answered or connected
    later): whoever keeps the ticket starts it or releases it."""
    async with admit(host, info) as ticket:
        return ticket.keep()


def http_refusal(refusal: CallRefused) -> HTTPException:
    """The API's answer to a refused call (status from `refusals.ANSWERS`)."""
    status = answer_for(refusal).http_status
    return HTTPException(refusal.detail, status_code=status, headers=refusal.headers)


async def webrtc_call(
    host: CallIntake, options: WebRtcOptions, tenant: str, agent_name: str, offer_sdp: str
) -> WebRtcCall:
    """Answer a browser's offer to `agent_name` and start the call; `UnknownRoute`, another
    `CallRefused`, or `SdpError` for a malformed offer."""
    agent = await host.find_agent(tenant, agent_name)
    if agent is None:
        raise UnknownRoute(f"no agent {agent_name!r} for tenant {tenant!r}")
    check_offer(offer_sdp)
    info = CallInfo(
        call_id=uuid.uuid4().hex,
        tenant_id=tenant,
        direction=Direction.INBOUND,
        from_uri="webrtc:browser",
        to_uri=f"agent:{agent_name}",
        transport="webrtc",
    )
    async with admit(host, info) as ticket:
        call = await answer_offer(offer_sdp, info, options)
        try:
            ticket.start(call, agent.pinned)
        except BaseException:
            await call.close("not started")
            raise
    return call
