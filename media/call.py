"""The call seam: a signalling-neutral call that SIP, WebRTC and AudioSocket each implement."""

from __future__ import annotations

import abc
import enum
from typing import Literal

import msgspec

from core.errors import TransportError


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


TransportKind = Literal["sip", "webrtc", "audiosocket", "virtual"]


class Dtmf(msgspec.Struct, frozen=True, tag="dtmf"):
    """The caller pressed a key."""

    digit: str


class RemoteHangup(msgspec.Struct, frozen=True, tag="remote_hangup"):
    """The far end ended the call."""

    reason: str = ""


CallSignal = Dtmf | RemoteHangup


class CallInfo(msgspec.Struct, frozen=True, kw_only=True):
    call_id: str
    tenant_id: str
    direction: Direction
    from_uri: str = ""
    to_uri: str = ""
    transport: TransportKind = "virtual"


class CallControlError(TransportError, RuntimeError):
    """A call-control action failed (for example a transfer the far end refused)."""

    retryable: bool = False
    kind: str = "refused"
    """For logs and call records: refused (the far end or the network said no), unsupported
    (this call cannot do it), ami_error (Asterisk's manager failed), ended."""

    def __init__(self, message: str = "", *, kind: str = "") -> None:
        super().__init__(message)
        if kind:
            self.kind = kind


class Call(abc.ABC):
    """Call control, independent of signalling. Events arrive through `signals()`."""

    info: CallInfo

    @abc.abstractmethod
    async def hangup(self, reason: str = "normal") -> None:
        """End the call (idempotent)."""

    @abc.abstractmethod
    async def transfer(self, target: str) -> None:
        """Blind-transfer the caller to `target` (a SIP URI, number or dialplan target)."""

    @abc.abstractmethod
    async def send_dtmf(self, digits: str) -> None:
        """Send DTMF digits to the far end."""

    @abc.abstractmethod
    async def next_signal(self) -> CallSignal:
        """Wait for the next signalling event (DTMF, remote hangup)."""
