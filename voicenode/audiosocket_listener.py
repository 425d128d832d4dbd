"""The AudioSocket listener: Asterisk calls into the node (and, with AMI, out of it).

Each connection's UUID picks who answers, in this order:
1. a call this node originated through AMI (`voicenode.asterisk`): its tenant and agent, its
   admission already held;
2. `audiosocket.routes`: the longest UUID prefix (hex digits, dashes ignored) -> `tenant/agent`;
3. `audiosocket.default_agent` (`demo/receptionist` out of the box; empty: refuse).
Both are read from the node's running settings for each connection (`voicenode.live`), so a
reload changes them for the next call.
An unknown UUID or agent gets the error kind (code 0x10) and the connection is closed; a node
that is full, draining or still loading models, or a tenant over its quota, gets code 0x11.
The UUID is only a routing key: call ids are the node's own, and a second connection with the
UUID of a live call is refused (0x11), never merged with or recorded over that call. A
connection from outside `audiosocket.allowed_sources` (when set) is closed at accept.
With `ami.host` set, calls can be transferred (Redirect), hung up and sent DTMF through AMI, and
`node.dialers["asterisk"]` places outbound calls.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from config.schema import Settings
from control_api import intake
from control_api.host import CallIntake
from control_api.refusals import CallRefused as Refused
from control_api.refusals import ShuttingDown, UnknownRoute, answer_for
from media.audiosocket_call import AudioSocketCall, AudioSocketOptions
from media.audiosocket_server import (
    AudioSocketServer,
    CallRefused,
    CallRoute,
    serve_audiosocket,
)
from media.call import CallInfo, Direction
from voicenode.asterisk import AsteriskDialer, AsteriskPbx
from voicenode.live import live_part

__all__ = ["NodeAudioSocketRouter", "audiosocket_listener"]

log = logging.getLogger(__name__)


def _routes(routes: dict[str, str]) -> list[tuple[str, str]]:
    """`audiosocket.routes` as (hex prefix, target), the longest prefix first."""
    return sorted(
        ((prefix.replace("-", "").lower(), target) for prefix, target in routes.items()),
        key=lambda item: -len(item[0]),
    )


class NodeAudioSocketRouter:
    """Routes AudioSocket UUIDs to the node's tenants and agents (`AudioSocketRouter`)."""

    def __init__(
        self, settings: Settings, node: CallIntake, pbx: AsteriskPbx | None = None
    ) -> None:
        self._settings = live_part(node, lambda s: s.audiosocket, settings.audiosocket)
        """The running `audiosocket` section (a reload replaces it), read for each UUID."""
        self._node = node
        self._pbx = pbx
        self._live: dict[uuid.UUID, str] = {}
        """UUID -> call id of the calls routed and not yet ended (one call per UUID at a time)."""
        self._tickets: dict[str, intake.Ticket] = {}
        """The admissions of the calls routed and not yet started, by call id."""

    def target(self, call_uuid: uuid.UUID) -> tuple[str, str] | None:
        """(tenant, agent) for a UUID the node did not originate, or None."""
        digits, cfg = call_uuid.hex, self._settings()
        entry = next((t for p, t in _routes(cfg.routes) if digits.startswith(p)), None)
        entry = entry or cfg.default_agent
        if not entry:
            return None
        tenant, _, agent = entry.partition("/")
        return tenant, agent

    async def route(self, call_uuid: uuid.UUID) -> CallRoute:
        if call_uuid in self._live:
            log.warning("audiosocket: a second connection for a live call's UUID refused")
            raise CallRefused("UUID in use")
        self._live[call_uuid] = ""  # taken now: route() awaits, a twin may arrive meanwhile
        try:
            ticket, route = await self._route(call_uuid)
        except BaseException as exc:
            del self._live[call_uuid]
            if isinstance(exc, Refused):  # the node's refusal, as the AudioSocket error code
                raise CallRefused(exc.reason, answer_for(exc).audiosocket) from exc
            raise
        self._live[call_uuid] = route.info.call_id
        self._tickets[route.info.call_id] = ticket
        return route

    def _forget(self, call_id: str) -> None:
        for key in [k for k, v in self._live.items() if v == call_id]:
            del self._live[key]

    async def _route(self, call_uuid: uuid.UUID) -> tuple[intake.Ticket, CallRoute]:
        key = str(call_uuid)
        far_end = self._pbx.control.far_end(key) if self._pbx is not None else None
        outbound = self._pbx.take_originated(key) if self._pbx is not None else None
        if outbound is not None:
            call, ticket = outbound
            return ticket, CallRoute(info=ticket.info, agent=call.agent, control=far_end)
        target = self.target(call_uuid)
        if target is None:
            raise UnknownRoute("unknown call UUID")
        tenant, name = target
        agent = await self._node.find_agent(tenant, name)
        if agent is None:
            raise UnknownRoute(f"no agent {name!r} for tenant {tenant!r}")
        info = CallInfo(
            call_id=uuid.uuid4().hex,  # the node's own id: the UUID is only a routing key
            tenant_id=tenant,
            direction=Direction.INBOUND,
            from_uri=f"audiosocket:{key}",
            to_uri=f"agent:{name}",
            transport="audiosocket",
        )
        return await intake.hold(self._node, info), CallRoute(
            info=info, agent=agent.pinned, control=far_end
        )

    def start(self, call: AudioSocketCall, route: CallRoute) -> None:
        call_id = route.info.call_id
        ticket = self._tickets.pop(call_id)
        try:
            task = ticket.start(call, route.agent)
        except ShuttingDown as exc:
            self._forget(call_id)
            raise CallRefused(exc.reason) from exc
        task.add_done_callback(lambda _: self._forget(call_id))


@asynccontextmanager
async def audiosocket_listener(
    settings: Settings, node: CallIntake
) -> AsyncIterator[AudioSocketServer | None]:
    """Serve AudioSocket while entered (nothing when `audiosocket.enabled` is false); with
    `ami.host` set, also keep the AMI connection and register the "asterisk" dialer."""
    cfg = settings.audiosocket
    if not cfg.enabled:
        yield None
        return
    async with AsyncExitStack() as stack:
        pbx: AsteriskPbx | None = None
        if settings.ami.host:
            pbx = await stack.enter_async_context(AsteriskPbx(settings, node))
        options = AudioSocketOptions(
            uuid_timeout_s=cfg.uuid_timeout_s,
            inbound_buffer_frames=cfg.inbound_buffer_frames,
            outbound_buffer_frames=cfg.outbound_buffer_frames,
            allowed_sources=tuple(cfg.allowed_sources),
        )
        router = NodeAudioSocketRouter(settings, node, pbx)
        server = await stack.enter_async_context(
            serve_audiosocket(router, cfg.host, cfg.port, options=options)
        )
        stack.push_async_callback(node.calls.shutdown)
        if pbx is not None:
            if not settings.ami.audiosocket_address:
                pbx.audiosocket_address = f"{cfg.host}:{server.port}"
            node.dialers["asterisk"] = AsteriskDialer(pbx)
            stack.callback(node.dialers.pop, "asterisk", None)
        yield server
