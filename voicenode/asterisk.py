"""The node's Asterisk: AMI call control for AudioSocket calls, and outbound calls through it.

`AsteriskPbx` keeps the AMI connection (`sip.ami`), follows channels (`sip.asterisk_calls`) and
remembers the calls this node originated until their AudioSocket connection arrives.
`AsteriskDialer` is the `control_api.host.Dialer` for `"via": "asterisk"`: it admits the call,
sends Originate (channel `ami.originate_channel` with `{to}`, then `ami.originate_context`
which runs `AudioSocket(${VOICENODE_UUID},${VOICENODE_AUDIOSOCKET})`) and returns once
Asterisk has queued it. The conversation starts when the AudioSocket connection with that
UUID arrives (`voicenode.audiosocket_listener`); a failed or unanswered originate, or a
channel hung up before that, gives the admission back. An originate that failed is reported
to `on_unanswered` hooks first (`control_api.host.ReportsUnanswered`), its OriginateResponse
`Reason` read as `UNANSWERED_REASONS` says (busy, no_answer; anything else refused or
unreachable).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Final

import msgspec

from config.schema import Settings
from control_api import intake
from control_api.host import CallIntake, DialError, UnansweredHook, checked_caller_id
from control_api.intake import Ticket
from core.destination import parse as parse_destination
from media.call import CallInfo, Direction
from sip.ami import AmiActionFailed, AmiClient, AmiError, AmiEvent, AmiOptions
from sip.asterisk_calls import (
    AsteriskChannels,
    AsteriskControl,
    ChannelHungUp,
    OriginateResult,
    canonical_uuid,
)

__all__ = ["AsteriskDialer", "AsteriskPbx", "OutboundCall"]

log = logging.getLogger(__name__)

# How long after the originate timeout the node still waits for the AudioSocket connection.
_CONNECT_GRACE_S: Final = 15.0

UNANSWERED_REASONS: Final = {
    "1": "refused",  # AST_CONTROL_HANGUP: the far end ended it before answering (404, 603...)
    "2": "no_answer",  # AST_CONTROL_RING
    "3": "no_answer",  # AST_CONTROL_RINGING: it rang until Originate's Timeout
    "5": "busy",  # AST_CONTROL_BUSY
    "8": "unreachable",  # AST_CONTROL_CONGESTION
}
"""A failed OriginateResponse's `Reason` (the last control frame Asterisk saw on the channel)
as one of `voicenode.sip_listener.OUTCOMES`; any other (0: the channel could not be made)
is unreachable."""


class OutboundCall(msgspec.Struct, frozen=True, kw_only=True):
    call_id: str
    tenant_id: str
    agent: str
    to: str
    caller_id: str | None = None
    """Originate's CallerID (checked: `control_api.host.CALLER_ID`); None: `ami.caller_id`."""


def ami_options(settings: Settings) -> AmiOptions:
    ami = settings.ami
    return AmiOptions(
        host=ami.host,
        port=ami.port,
        username=ami.username,
        secret=ami.secret,
        connect_timeout_s=ami.connect_timeout_s,
        action_timeout_s=ami.action_timeout_s,
        backoff_initial_s=ami.backoff_initial_s,
        backoff_max_s=ami.backoff_max_s,
    )


class AsteriskPbx:
    """One Asterisk over AMI: call control by call UUID and the calls originated here."""

    def __init__(self, settings: Settings, node: CallIntake) -> None:
        self._settings = settings
        self._node = node
        self.channels = AsteriskChannels()
        self.client = AmiClient(ami_options(settings), self._on_event)
        self.control = AsteriskControl(
            self.client, self.channels, transfer_context=settings.ami.transfer_context
        )
        self._originated: dict[str, tuple[OutboundCall, Ticket]] = {}
        self._answered: set[str] = set()
        """Originated calls whose OriginateResponse said Success (answered, not connected)."""
        self._unanswered: list[UnansweredHook] = []
        self._watchdogs: dict[str, asyncio.Task[None]] = {}
        sock = settings.audiosocket
        self.audiosocket_address = settings.ami.audiosocket_address or f"{sock.host}:{sock.port}"
        """`HOST:PORT` originated calls connect back to (the listener sets the bound port)."""

    async def __aenter__(self) -> AsteriskPbx:
        await self.client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for call_uuid in list(self._originated):
            self._abandon(call_uuid, "shutdown")
        await self.client.close()

    def take_originated(self, call_uuid: str) -> tuple[OutboundCall, Ticket] | None:
        """The outbound call `call_uuid` belongs to and its admission, once."""
        call = self._originated.pop(call_uuid, None)
        self._answered.discard(call_uuid)
        if (task := self._watchdogs.pop(call_uuid, None)) is not None:
            task.cancel()
        return call

    @property
    def pending(self) -> int:
        """Originated calls whose AudioSocket connection has not arrived yet."""
        return len(self._originated)

    async def originate(self, call: OutboundCall, audiosocket_address: str) -> None:
        """Admit and originate `call`; DialError when Asterisk refuses or is unreachable."""
        try:  # the API checked it against the dial plan; nothing else reaches Originate
            to = str(parse_destination(call.to))
        except ValueError as exc:
            raise DialError(f"invalid destination: {exc}", 400) from None
        call_uuid = canonical_uuid(call.call_id) or str(uuid.uuid4())
        extra = {"call_id": call.call_id, "tenant_id": call.tenant_id}
        ami = self._settings.ami
        try:  # a dial during a reconnect waits for it a little
            async with asyncio.timeout(ami.connect_timeout_s):
                await self.client.wait_connected()
        except (TimeoutError, AmiError) as exc:
            log.warning("asterisk manager not connected", extra={**extra, "error": str(exc)})
            raise DialError("the PBX is not reachable", 503) from None
        info = CallInfo(
            call_id=call.call_id,
            tenant_id=call.tenant_id,
            direction=Direction.OUTBOUND,
            to_uri=call.to,
            transport="audiosocket",
        )
        # held until the AudioSocket connection takes it, or given back by `_abandon`
        self._originated[call_uuid] = (call, await intake.hold(self._node, info))
        try:
            await self.control.originate(
                call_uuid=call_uuid,
                channel=ami.originate_channel.format(to=to),
                context=ami.originate_context,
                exten=ami.originate_exten,
                timeout_s=ami.originate_timeout_s,
                caller_id=call.caller_id or ami.caller_id,
                variables={"VOICENODE_AUDIOSOCKET": audiosocket_address},
            )
        except AmiActionFailed as exc:  # Asterisk's own text stays in the log
            self._abandon(call_uuid, f"originate refused: {exc}")
            raise DialError("the PBX refused the call", 502) from None
        except AmiError as exc:
            self._abandon(call_uuid, f"ami unavailable: {exc}")
            raise DialError("the PBX is not reachable", 503) from None
        except BaseException:
            self._abandon(call_uuid, "dial failed")
            raise
        if call_uuid in self._originated:  # not already failed by an event
            task = asyncio.get_running_loop().create_task(
                self._watchdog(call_uuid), name=f"originate:{call.call_id}"
            )
            self._watchdogs[call_uuid] = task
        log.info("asterisk call originated", extra={**extra, "call_uuid": call_uuid})

    async def _watchdog(self, call_uuid: str) -> None:
        await asyncio.sleep(self._settings.ami.originate_timeout_s + _CONNECT_GRACE_S)
        self._watchdogs.pop(call_uuid, None)
        self._abandon(call_uuid, "no audiosocket connection")

    def _abandon(self, call_uuid: str, reason: str) -> None:
        taken = self.take_originated(call_uuid)
        if taken is None:
            return
        call, ticket = taken
        ticket.release()
        log.info(
            "asterisk call not connected",
            extra={"call_id": call.call_id, "tenant_id": call.tenant_id, "reason": reason},
        )

    def on_unanswered(self, hook: UnansweredHook) -> Callable[[], None]:
        """`hook(call_id, outcome)` for each originated call that failed (before its admission
        is given back); returns the unsubscribe function."""
        self._unanswered.append(hook)
        return lambda: self._unanswered.remove(hook) if hook in self._unanswered else None

    def _on_event(self, event: AmiEvent) -> None:
        match self.channels.feed(event):
            case OriginateResult(call_uuid=call_uuid, ok=False, reason=reason):
                if (taken := self._originated.get(call_uuid)) is not None:
                    outcome = UNANSWERED_REASONS.get(reason.strip(), "unreachable")
                    for hook in list(self._unanswered):
                        hook(taken[0].call_id, outcome)
                self._abandon(call_uuid, f"originate failed (reason {reason})")
            case OriginateResult(call_uuid=call_uuid, ok=True) if call_uuid in self._originated:
                self._answered.add(call_uuid)
            case ChannelHungUp(call_uuid=call_uuid) if call_uuid in self._answered:
                self._abandon(call_uuid, "hung up before connecting")
            # A channel that hangs up before its OriginateResponse came is an originate that
            # failed: its response (always sent for an Async originate) says why; the
            # watchdog gives the admission back if it never comes.


class AsteriskDialer:
    """`control_api.host.Dialer` for `"via": "asterisk"`: `AsteriskDialer(pbx)`, where `pbx` is
    the `AsteriskPbx` the AudioSocket listener opened (it registers this dialer as
    `node.dialers["asterisk"]` when `ami.host` is set)."""

    def __init__(self, pbx: AsteriskPbx) -> None:
        self._pbx = pbx

    def on_unanswered(self, hook: UnansweredHook) -> Callable[[], None]:
        """`control_api.host.ReportsUnanswered`: busy, no_answer (it rang until Originate's
        timeout), refused or unreachable, from the failed OriginateResponse's `Reason`."""
        return self._pbx.on_unanswered(hook)

    async def dial(
        self, *, call_id: str, tenant_id: str, agent: str, to: str, caller_id: str | None = None
    ) -> None:
        call = OutboundCall(
            call_id=call_id,
            tenant_id=tenant_id,
            agent=agent,
            to=to,
            caller_id=checked_caller_id(caller_id),
        )
        await self._pbx.originate(call, self._pbx.audiosocket_address)
