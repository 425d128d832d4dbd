"""One bench call's media as the caller sees it on the wire, whatever the transport.

A `Leg` is opened against a node by a transport module's `open_leg(target, on_audio)`, an async
context manager (`@asynccontextmanager`) yielding the connected leg and hanging up / releasing
everything on exit:

    async with open_leg(target, on_audio) as leg:
        ...

Once open:
- the bench's pacer calls `send(pcm)` every 20 ms with one frame of caller audio (16 kHz mono
  int16, 640 bytes); the leg encodes it for its transport (Opus/PCMU, RTP, AudioSocket slin)
  and puts it on the wire at once;
- every packet of agent audio that arrives is decoded to 16 kHz int16 and handed to the
  `on_audio` callback given at open, with the monotonic arrival time (`time.monotonic()`,
  taken when the packet came off the socket, before any jitter buffer or pacing of the
  client's own);
- `closed` is set when the far end ends the call (BYE, AudioSocket hangup, WebRTC close);
- `hangup()` ends the call from the caller's side; it is idempotent.

`open_leg` returns when the call is answered (200 OK / ICE connected / AudioSocket UUID sent):
the bench takes that moment as "answer" for the time to greeting. A refused call raises
`LegRefused`; anything else that keeps the call from being set up raises `LegError`. A leg
may also expose `error: str`, set when the node ends an open call with an error (AudioSocket's
error kind: "refused" counts as a refusal); the runner reports it.

Measurements (bench/wire/measure.py) only use the send times the pacer records and the
arrival times handed to `on_audio`, so every transport is measured the same way.

Transports are looked up by name (`open_transport`), importing the module only then, so a
transport whose dependencies are missing does not break the others.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Literal, Protocol

import msgspec

OnAudio = Callable[[float, bytes], None]
"""(arrival time on the monotonic clock, 16 kHz mono int16 PCM of one received packet)."""

FRAME_MS = 20
SAMPLE_RATE = 16_000
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2


class Leg(Protocol):
    call_id: str | None
    """The node's call id when the transport tells it (WebRTC `ready` event, SIP Call-ID,
    AudioSocket UUID). The bench uses it to fetch the call's transcript from the node."""
    closed: asyncio.Event

    async def send(self, pcm: bytes) -> None:
        """Put one 20 ms frame (640 bytes of 16 kHz int16) of caller audio on the wire."""
        ...

    async def hangup(self) -> None:
        """End the call from the caller's side (idempotent)."""
        ...


class LegTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a node listens and how to reach one of its agents, for every transport."""

    base_url: str = "http://127.0.0.1:8080"
    """The node's HTTP base URL (WebRTC offer, call history, events, /metrics)."""
    api_key: str = ""
    """Bearer key for /v1 (the platform admin key or a tenant key); never logged."""
    tenant: str = "demo"
    agent: str = "receptionist"
    """Agent name (WebRTC offer). SIP picks the agent by `sip_number`, AudioSocket by
    `audiosocket_uuid_prefix` through the node's routes (or its default agent)."""
    sip_host: str = "127.0.0.1"
    sip_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 5060
    sip_number: str = "1000"
    """The dialled number (request-URI user); the node routes it to an agent."""
    sip_local_host: str = "127.0.0.1"
    """Address the bench's SIP/RTP caller binds to."""
    audiosocket_host: str = "127.0.0.1"
    audiosocket_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 9092
    audiosocket_uuid_prefix: Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{0,32}$")] = ""
    """Hex digits the call UUID starts with (matches `audiosocket.routes`); the rest random."""
    audiosocket_rate: Literal[8000, 16000] = 8000
    """Caller audio rate: 8 kHz slin (kind 0x10) as Asterisk's AudioSocket() sends, or 16 kHz
    (0x12); the node answers in the same format."""
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    """Longest wait for the call to be answered / media to connect."""


class LegError(Exception):
    """A bench call could not be set up (connection refused, timeout, bad answer)."""

    retryable = True


class LegRefused(LegError):
    """The node refused the call (503/486/429, AudioSocket error kind): over capacity."""


class OpenLeg(Protocol):
    def __call__(
        self, target: LegTarget, on_audio: OnAudio
    ) -> AbstractAsyncContextManager[Leg]: ...


TRANSPORTS: dict[str, str] = {
    "audiosocket": "bench.wire.audiosocket_leg",
    "webrtc": "bench.wire.webrtc_leg",
    "sip": "bench.wire.sip_leg",
}
"""Transport name -> module exposing `open_leg(target, on_audio)`."""


def open_transport(name: str) -> OpenLeg:
    """The `open_leg` of transport `name`, importing its module now.

    Raises `ValueError` for an unknown name and `LegError` when the module cannot be imported
    (its dependencies are missing)."""
    module_name = TRANSPORTS.get(name)
    if module_name is None:
        raise ValueError(f"unknown transport {name!r}; expected one of {sorted(TRANSPORTS)}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LegError(f"transport {name!r} is unavailable: {exc}") from exc
    opener: OpenLeg = module.open_leg
    return opener
