"""The node's SIP side: the pjsua2 user agent started with the node, inbound routing and
admission, and the `sip` dialer for outbound calls.

Inbound INVITEs route by the request-URI user (the dialled number) through `sip.numbers`;
a `sip.tenant_header` (set by Kamailio) names the tenant, and is believed only from
`sip.trusted_proxies`. An INVITE from outside `sip.allowed_sources` (when set) → 403;
unknown number → 404; draining, loading or full → 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

from config.schema import Settings, SipSettings
from control_api import intake
from control_api.host import CallIntake, DialError, UnansweredHook, checked_caller_id
from control_api.metrics import CALLS_REFUSED
from control_api.refusals import CallRefused, NotAllowed, ShuttingDown, UnknownRoute, answer_for
from core.destination import SipUri
from core.destination import parse as parse_destination
from media.call import CallControlError, CallInfo, Direction
from sip.calls import SipCall
from sip.ua import Accept, IncomingInvite, Reject, UserAgent
from voicenode.live import live_part

log = logging.getLogger(__name__)

EARLY_FAILURE_S = 3.0
"""How long `POST /v1/calls` waits for the far end to ring before answering "dialing": a
refusal within it (wrong trunk credentials, unknown number, unreachable host) is the API's
502 instead of a call that silently never starts."""


def _networks(entries: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def _within(source: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(source)
    except ValueError:
        return False
    return any(addr in net for net in networks)


class SipRouter:
    """Decides what an inbound INVITE gets."""

    def __init__(self, settings: SipSettings, node: CallIntake) -> None:
        self._settings = settings
        self._node = node
        self._live = live_part(node, lambda s: s.sip, settings)
        """The node's running `sip` section: a reload changes the networks for the next INVITE."""

    def trusted(self, source: str) -> bool:
        return _within(source, _networks(self._live().trusted_proxies))

    def allowed(self, source: str) -> bool:
        """Whether INVITEs from `source` are taken (`sip.allowed_sources`; empty: any)."""
        allowed = self._live().allowed_sources
        return not allowed or _within(source, _networks(allowed))

    async def target(self, invite: IncomingInvite) -> tuple[str, str] | None:
        """(tenant, pinned agent) for the dialled number, or None.

        Numbers are unique across the fleet; a `tenant_header` from a trusted proxy must name
        the number's own tenant (a mismatch is refused), one from anywhere else is ignored."""
        route = await self._node.find_number(invite.number)
        if route is None:
            return None
        claimed = invite.request.header(self._settings.tenant_header)
        if claimed is not None:
            if not self.trusted(invite.source):
                log.warning(
                    "sip: tenant header from an untrusted source ignored",
                    extra={"source": invite.source},
                )
            elif claimed.strip() != route.tenant_id:
                log.warning(
                    "sip: the proxy's tenant header does not own the number",
                    extra={"tenant_id": route.tenant_id, "source": invite.source},
                )
                return None
        return route.tenant_id, route.agent.pinned

    async def route(self, invite: IncomingInvite) -> Accept | Reject:
        try:
            return await self._admit(invite)
        except CallRefused as exc:
            answer = answer_for(exc)
            return Reject(answer.sip_status, answer.sip_reason, exc.headers)

    async def _admit(self, invite: IncomingInvite) -> Accept:
        if not self.allowed(invite.source):
            CALLS_REFUSED.labels(reason="source").inc()
            log.warning("sip: INVITE from a source not allowed", extra={"source": invite.source})
            raise NotAllowed("source")
        target = await self.target(invite)
        if target is None:
            raise UnknownRoute("unknown number")
        tenant, agent = target
        info = CallInfo(
            call_id=uuid.uuid4().hex,
            tenant_id=tenant,
            direction=Direction.INBOUND,
            from_uri=invite.request.header("from") or "",
            to_uri=invite.request.uri,
            transport="sip",
        )
        ticket = await intake.hold(self._node, info)  # the user agent starts or abandons it

        def start(call: SipCall) -> None:
            try:
                ticket.start(call, agent)
            except ShuttingDown:
                asyncio.get_running_loop().create_task(call.close("shutdown"))

        return Accept(info=info, start=start, abandon=ticket.release)


OUTCOMES: Final = {
    "busy": "the callee is busy",
    "no_answer": "no answer",
    "unreachable": "the destination could not be reached",
    "refused": "the call was refused",
}
"""What the API says about an outbound call that failed before it rang: a fixed set, so the
far end's own status and reason text (an oracle for scanning what exists) never reach it."""


def outcome_of(status: int) -> str:
    """The `OUTCOMES` key for a final SIP status."""
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):
        return "no_answer"
    if status in (0, 502, 503, 504) or status >= 700:
        return "unreachable"
    return "refused"


class SipDialer:
    """`control_api.host.Dialer` for SIP: INVITE through the trunk, the session on answer."""

    def __init__(self, ua: UserAgent, node: CallIntake) -> None:
        self._ua = ua
        self._node = node
        self._tasks: set[asyncio.Task[None]] = set()
        self._unanswered: list[UnansweredHook] = []

    def on_unanswered(self, hook: UnansweredHook) -> Callable[[], None]:
        """`control_api.host.ReportsUnanswered`: `hook(call_id, outcome)` for each call that
        rang and ended unanswered (`outcome_of` its final status; no_answer after the wait)."""
        self._unanswered.append(hook)
        return lambda: self._unanswered.remove(hook) if hook in self._unanswered else None

    def _uri(self, to: str) -> str:
        """The request-URI for `to` (checked against the dial plan by the API): a SIP URI as
        it is, a number or extension at the trunk's host."""
        try:
            destination = parse_destination(to)
        except ValueError as exc:
            raise DialError(f"invalid destination: {exc}", 400) from None
        if isinstance(destination, SipUri):
            return str(destination)
        trunk = self._ua.settings.trunk.uri
        if not trunk:
            raise DialError("numbers need a SIP trunk (sip.trunk.uri): give a SIP URI", 400)
        return f"sip:{destination}@{trunk.split(':', 1)[1].split(';')[0]}"

    async def dial(
        self, *, call_id: str, tenant_id: str, agent: str, to: str, caller_id: str | None = None
    ) -> None:
        uri = self._uri(to)
        from_user = checked_caller_id(caller_id) or ""
        info = CallInfo(
            call_id=call_id,
            tenant_id=tenant_id,
            direction=Direction.OUTBOUND,
            to_uri=uri,
            transport="sip",
        )
        async with intake.admit(self._node, info) as ticket:
            call = await self._place(uri, info, from_user)
            try:
                async with asyncio.timeout(EARLY_FAILURE_S):
                    await call.wait_progress()
            except TimeoutError:
                pass  # not ringing yet, still being called: `_when_answered` takes it from here
            except CallControlError:
                await call.close("refused")
                outcome = outcome_of(call.end_status or 0)
                raise DialError(self._refusal(call), 502, outcome) from None
            except BaseException:
                await call.close("shutdown")
                raise
            task = asyncio.get_running_loop().create_task(
                self._when_answered(call, agent, ticket.keep()), name=f"dial:{call_id}"
            )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _place(self, uri: str, info: CallInfo, caller_id: str) -> SipCall:
        try:
            return await self._ua.dial(uri, info, caller_id=caller_id)
        except ValueError as exc:
            extra = {"call_id": info.call_id, "tenant_id": info.tenant_id, "error": str(exc)}
            log.warning("outbound sip call not sent", extra=extra)
            raise DialError("the SIP stack could not send the call", 400) from None

    def _refusal(self, call: SipCall) -> str:
        """What the API says about a call refused before it rang: one of `OUTCOMES`, never
        the far end's status or reason text (those go to the log, for the operator)."""
        trunk = self._ua.settings.trunk
        status, reason = call.end_status or 0, call.end_reason
        outcome = outcome_of(status)
        log.warning(
            "outbound sip call refused",
            extra={
                "call_id": call.info.call_id,
                "tenant_id": call.info.tenant_id,
                "status": status,
                "reason": reason,
                "outcome": outcome,
            },
        )
        if trunk.username and status in (401, 403, 407):
            log.warning(
                "outbound sip call: the trunk refused the credentials; check"
                " sip.trunk.username, password and realm",
                extra={"call_id": call.info.call_id, "status": status},
            )
        return f"the call did not connect: {OUTCOMES[outcome]}"

    async def _when_answered(self, call: SipCall, agent: str, ticket: intake.Ticket) -> None:
        extra = {"call_id": call.info.call_id, "tenant_id": call.info.tenant_id}
        async with ticket:
            try:
                async with asyncio.timeout(60):
                    await call.wait_answered()
            except (CallControlError, TimeoutError) as exc:
                log.info("outbound sip call not answered", extra={**extra, "error": str(exc)})
                await call.close("unanswered")
                timed_out = isinstance(exc, TimeoutError)
                outcome = "no_answer" if timed_out else outcome_of(call.end_status or 0)
                for hook in list(self._unanswered):
                    hook(call.info.call_id, outcome)
                return
            except asyncio.CancelledError:
                await call.close("shutdown")
                raise
            try:
                ticket.start(call, agent)
            except ShuttingDown:
                await call.close("shutdown")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))


@asynccontextmanager
async def sip_listener(settings: Settings, node: CallIntake) -> AsyncIterator[UserAgent | None]:
    """Serve SIP while entered (nothing when `sip.enabled` is false)."""
    if not settings.sip.enabled:
        yield None
        return
    ua = UserAgent(settings.sip, SipRouter(settings.sip, node).route)
    await ua.start()
    node.on_drain(ua.refuse_options)  # a draining node answers OPTIONS 503
    dialer = SipDialer(ua, node)
    node.dialers["sip"] = dialer
    try:
        yield ua
    finally:
        node.dialers.pop("sip", None)
        await dialer.close()
        await node.calls.shutdown()
        await ua.stop()
