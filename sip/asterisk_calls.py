"""Asterisk calls over AMI: which channel carries which call, and call control on it.

A call is known by its AudioSocket UUID. The dialplan sets it on the channel as the variable
`VOICENODE_UUID` (AMI reports that as a `VarSet` event, or in `ChanVariable` headers when
manager.conf lists it in `channelvars`); a call this node originates also gets the UUID as its
channel's `Uniqueid` (Originate's `ChannelId`). `AsteriskChannels` follows Newchannel, VarSet,
Hangup, DTMFEnd and OriginateResponse events and reports the ones that concern a call.
`AsteriskControl` does originate, transfer (Redirect), hangup and DTMF (PlayDTMF) on a
call's channel; `far_end(call_uuid)` is that control as AudioSocket's `FarEndControl`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Final

import msgspec

from core.destination import SipUri
from core.destination import parse as parse_destination
from media.call import CallControlError
from sip.ami import AmiClient, AmiError, AmiEvent

__all__ = [
    "UUID_VARIABLE",
    "AsteriskChannels",
    "AsteriskControl",
    "ChannelDtmf",
    "ChannelEvent",
    "ChannelHungUp",
    "ChannelUp",
    "OriginateResult",
]

log = logging.getLogger(__name__)

UUID_VARIABLE: Final = "VOICENODE_UUID"
TRANSFER_VARIABLE: Final = "VOICENODE_TRANSFER_TARGET"


class ChannelUp(msgspec.Struct, frozen=True, tag="up"):
    call_uuid: str
    channel: str


class ChannelHungUp(msgspec.Struct, frozen=True, tag="hungup"):
    call_uuid: str
    channel: str
    cause: str = ""


class ChannelDtmf(msgspec.Struct, frozen=True, tag="dtmf"):
    call_uuid: str
    digit: str
    direction: str = ""


class OriginateResult(msgspec.Struct, frozen=True, tag="originate"):
    call_uuid: str
    ok: bool
    reason: str = ""


ChannelEvent = ChannelUp | ChannelHungUp | ChannelDtmf | OriginateResult


def canonical_uuid(value: str) -> str | None:
    """`value` as a lower-case dashed UUID, or None when it is not one."""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


class _Channel(msgspec.Struct):
    name: str
    uniqueid: str
    call_uuid: str | None = None


class AsteriskChannels:
    """Channels seen on AMI and the calls they carry; `feed` every event, in order."""

    def __init__(self) -> None:
        self._by_uniqueid: dict[str, _Channel] = {}
        self._by_call: dict[str, _Channel] = {}
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._by_uniqueid)

    def channel_of(self, call_uuid: str) -> str | None:
        channel = self._by_call.get(call_uuid)
        return channel.name if channel is not None else None

    async def wait_channel(self, call_uuid: str) -> str:
        """The call's channel name, once an event has named it (bound it with a timeout)."""
        while (name := self.channel_of(call_uuid)) is None:
            self._changed.clear()
            await self._changed.wait()
        return name

    def feed(self, event: AmiEvent) -> ChannelEvent | None:
        name = event.name.lower()
        uniqueid = event.get("uniqueid")
        channel = self._by_uniqueid.get(uniqueid) if uniqueid else None
        if channel is None and uniqueid and event.get("channel") and name != "hangup":
            channel = self._by_uniqueid[uniqueid] = _Channel(event.get("channel"), uniqueid)
            if (as_uuid := canonical_uuid(uniqueid)) is not None:  # originated with ChannelId
                up = self._bind(channel, as_uuid)
                if name == "newchannel":
                    return up
        if name == "originateresponse":
            return self._originate_result(event)
        if channel is None:
            return None
        if event.get("channel"):
            channel.name = event.get("channel")  # renames (masquerades) keep the uniqueid
        bound = self._bind_from(channel, event)
        match name:
            case "hangup":
                self._by_uniqueid.pop(channel.uniqueid, None)
                if channel.call_uuid is not None:
                    if self._by_call.get(channel.call_uuid) is channel:
                        del self._by_call[channel.call_uuid]
                    return ChannelHungUp(channel.call_uuid, channel.name, event.get("cause-txt"))
            case "dtmfend" if channel.call_uuid is not None:
                return ChannelDtmf(channel.call_uuid, event.get("digit"), event.get("direction"))
        return bound

    def _bind_from(self, channel: _Channel, event: AmiEvent) -> ChannelUp | None:
        value: str | None = None
        if event.name.lower() == "varset" and event.get("variable") == UUID_VARIABLE:
            value = event.get("value")
        elif UUID_VARIABLE in event.variables:
            value = event.variables[UUID_VARIABLE]
        if value is None or (call_uuid := canonical_uuid(value)) is None:
            return None
        if channel.call_uuid == call_uuid:
            return None
        return self._bind(channel, call_uuid)

    def _bind(self, channel: _Channel, call_uuid: str) -> ChannelUp:
        channel.call_uuid = call_uuid
        self._by_call[call_uuid] = channel
        self._changed.set()
        return ChannelUp(call_uuid, channel.name)

    def _originate_result(self, event: AmiEvent) -> OriginateResult | None:
        call_uuid = canonical_uuid(event.get("uniqueid"))
        if call_uuid is None:
            return None
        ok = event.get("response").lower() == "success"
        return OriginateResult(call_uuid, ok, event.get("reason"))


class AsteriskControl:
    """Call control through AMI actions, by call UUID. Raises `AmiError` subclasses."""

    def __init__(
        self,
        client: AmiClient,
        channels: AsteriskChannels,
        *,
        transfer_context: str,
        channel_timeout_s: float = 5.0,
    ) -> None:
        self.client = client
        self.channels = channels
        self.transfer_context = transfer_context
        self._channel_timeout_s = channel_timeout_s

    async def originate(
        self,
        *,
        call_uuid: str,
        channel: str,
        context: str,
        exten: str,
        timeout_s: float,
        caller_id: str = "",
        variables: Mapping[str, str] | None = None,
    ) -> None:
        """Ask Asterisk to call `channel` and, once answered, run `context,exten,1` on it.

        Returns once the request is queued; `OriginateResult` reports how it went."""
        fields: dict[str, str | list[str]] = {
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": "1",
            "Timeout": str(int(timeout_s * 1000)),
            "Async": "true",
            "ChannelId": call_uuid,
            "Variable": [
                f"{k}={v}" for k, v in {UUID_VARIABLE: call_uuid, **(variables or {})}.items()
            ],
        }
        if caller_id:
            fields["CallerID"] = caller_id
        await self.client.action("Originate", fields)

    async def _channel(self, call_uuid: str) -> str:
        try:
            async with asyncio.timeout(self._channel_timeout_s):
                return await self.channels.wait_channel(call_uuid)
        except TimeoutError:
            raise AmiError(f"no Asterisk channel is known for call {call_uuid}") from None

    async def redirect(self, call_uuid: str, target: str) -> None:
        """Blind transfer: the channel leaves AudioSocket for `transfer_context`.

        `target` is a `core.destination` in its canonical form (callers parse it first): a
        number or extension is the Redirect's extension, a SIP URI goes to extension `s` with
        the URI in ${VOICENODE_TRANSFER_TARGET}. Always `transfer_context`, never another."""
        try:
            destination = parse_destination(target)
        except ValueError as exc:
            raise AmiError(f"not a transfer destination: {exc}") from None
        target = str(destination)
        channel = await self._channel(call_uuid)
        context, exten, priority = self.transfer_context, "s", "1"
        if not isinstance(destination, SipUri):
            exten = target
        await self.client.action(
            "Setvar", {"Channel": channel, "Variable": TRANSFER_VARIABLE, "Value": target}
        )
        await self.client.action(
            "Redirect",
            {"Channel": channel, "Context": context, "Exten": exten, "Priority": priority},
        )

    async def hangup(self, call_uuid: str, cause: int = 16) -> None:
        channel = await self._channel(call_uuid)
        await self.client.action("Hangup", {"Channel": channel, "Cause": str(cause)})

    async def play_dtmf(self, call_uuid: str, digits: str, duration_ms: int = 100) -> None:
        channel = await self._channel(call_uuid)
        for digit in digits:
            await self.client.action(
                "PlayDTMF", {"Channel": channel, "Digit": digit, "Duration": str(duration_ms)}
            )

    def far_end(self, call_uuid: str) -> AsteriskFarEnd:
        return AsteriskFarEnd(self, call_uuid)


class AsteriskFarEnd:
    """One call's AMI control as AudioSocket's `FarEndControl` (errors as CallControlError)."""

    def __init__(self, control: AsteriskControl, call_uuid: str) -> None:
        self._control = control
        self.call_uuid = call_uuid

    async def transfer(self, target: str) -> None:
        try:
            await self._control.redirect(self.call_uuid, target)
        except AmiError as exc:
            raise _control_error("transfer", exc) from exc

    async def send_dtmf(self, digits: str) -> None:
        try:
            await self._control.play_dtmf(self.call_uuid, digits)
        except AmiError as exc:
            raise _control_error("sending DTMF", exc) from exc

    async def hangup(self) -> None:
        try:
            await self._control.hangup(self.call_uuid)
        except AmiError as exc:
            raise _control_error("hangup", exc) from exc


def _control_error(what: str, exc: AmiError) -> CallControlError:
    error = CallControlError(f"{what} through Asterisk failed: {exc}", kind="ami_error")
    error.retryable = exc.retryable
    return error
