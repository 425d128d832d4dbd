"""The bench's WebRTC caller: an aiortc peer that calls an agent through `POST /v1/webrtc/offer`.

Setup, as a browser does it: the offer carries every gathered ICE candidate (no trickle) and a
data channel labelled `events`; the node answers with its SDP and the call id, and the leg is
open once ICE and DTLS are connected. Against a node on a loopback address, candidates are
gathered on 127.0.0.1 only (a node whose `webrtc.host_addresses` are loopback drops every
other candidate); against any other address, on every interface but loopback (aioice's default).

Timing:
- Sending: `send(pcm)` queues the frame for the outbound track, whose `recv()` (awaited by
  aiortc's sender as soon as it has sent the previous frame) hands it over at once, already in
  the encoder's format (see `CallerTrack`); aiortc encodes it on its executor thread and sends
  it: on an idle loop well under a millisecond after the pacer's `send`. Opus itself looks
  6.5 ms ahead (in the audio, not in time: a browser's Opus does the same). When the pacer is
  more than a frame late, the track sends a frame of silence instead (the stream never stalls,
  RTP timestamps advance 20 ms a frame); the late frame goes right after it.
- Receiving: aiortc's receiver holds every audio packet in its jitter buffer until four more
  have arrived (`JitterBuffer(capacity=16, prefetch=4)`: 80 ms at 20 ms packets), then decodes
  it on its decoder thread. The arrival time handed to `on_audio` is not that hand-over time: a
  hook on the receiver (`_handle_rtp_packet`, which aiortc's DTLS transport calls for every
  decrypted RTP packet) notes `time.monotonic()` per RTP timestamp when the packet comes in,
  and the decoded frame is credited to its packet's arrival. What is left in the number is the
  event loop's own delay in reading the datagram and decrypting it (sub-millisecond on an idle
  loop; more when the bench's loop is busy). If a later aiortc drops that hook, or a frame's
  packet was not seen, the frame is credited to the hand-over time instead (80 ms late) and
  counted in `late_arrivals`, so a report can say so.
- `on_audio` itself is called when aiortc hands the frame over, i.e. ~80 ms after the time it
  is given: anything that reacts to received audio in real time (barge-in) sees it that late.
- Decoded audio (Opus: 48 kHz stereo, PCMU: 8 kHz) is resampled to 16 kHz mono with
  libswresample, which shifts it by at most 2 ms (see `bench.wire.resampling`).

The node sends no `ready` event: the call id is the one in the offer's answer. Events on the
data channel (JSON) are kept in `events`; `ended` sets `closed`, as does the peer connection
closing or failing. `hangup()` asks the node to end the call (`DELETE /v1/calls/{id}`, as the
/phone page does) and closes the peer connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ipaddress
import json
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import av
import httpx
import msgspec
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.wire.leg import (
    FRAME_BYTES,
    FRAME_MS,
    SAMPLE_RATE,
    LegError,
    LegRefused,
    LegTarget,
    OnAudio,
    OpenLeg,
)
from bench.wire.resampling import FrameResampler, MonoResampler
from media.webrtc_sdp import LOOPBACK, ice_host_addresses

log = logging.getLogger(__name__)

FRAME_S: Final = FRAME_MS / 1000
SILENCE: Final = bytes(FRAME_BYTES)
MAX_QUEUED: Final = 3
"""Frames `send` may queue ahead of the encoder (60 ms); older ones are dropped. In steady
state the queue is empty: each frame leaves as it is sent."""
REFUSED_STATUSES: Final = frozenset({429, 503})
HANGUP_TIMEOUT_S: Final = 5.0
_RTP_TS_MASK: Final = 0xFFFFFFFF
_ARRIVALS_KEPT: Final = 256


class WebRtcCodec(msgspec.Struct, frozen=True):
    mime: str
    rate: int
    """The rate aiortc's encoder works at; frames are handed to it at this rate."""
    channels: int


CODECS: Final = {
    "opus": WebRtcCodec("audio/opus", 48_000, 2),
    "pcmu": WebRtcCodec("audio/PCMU", 8_000, 1),
}


class CallerTrack(MediaStreamTrack):
    """The caller's microphone: frames `push`ed go to the encoder at once; a slot the pacer
    leaves empty for more than a frame gets silence.

    Frames leave in the encoder's own format (`rate`, `channels`), exactly 20 ms each: aiortc's
    Opus encoder re-chunks its input into 960-sample frames after resampling, and fed 16 kHz it
    would hold back 944 samples (19.7 ms) for the whole call; fed 48 kHz stereo 20 ms frames it
    resamples nothing and encodes each frame as it comes."""

    kind = "audio"

    def __init__(self, rate: int = SAMPLE_RATE, channels: int = 1) -> None:
        super().__init__()
        self._queue: deque[bytes] = deque(maxlen=MAX_QUEUED)
        self._pushed = asyncio.Event()
        self._due: float | None = None
        self._count = 0
        self._resample = FrameResampler(rate)
        self._channels = channels
        self._layout = "stereo" if channels == 2 else "mono"

    def push(self, pcm: bytes) -> None:
        if len(pcm) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes of 16 kHz int16, got {len(pcm)}")
        self._queue.append(pcm)
        self._pushed.set()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._due is None:
            self._due = time.monotonic()
        if not self._queue:
            self._pushed.clear()
            # Wait for the pacer's frame up to one frame past its slot, then send silence.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(_loop_time(self._due + FRAME_S)):
                    await self._pushed.wait()
        if self.readyState != "live":
            raise MediaStreamError
        if self._queue:
            pcm = self._queue.popleft()
            self._due = time.monotonic() + FRAME_S
        else:
            pcm = SILENCE
            self._due += FRAME_S
        return self._frame(pcm)

    def _frame(self, pcm: bytes) -> av.AudioFrame:
        samples = np.frombuffer(self._resample.convert(pcm), dtype="<i2")
        if self._channels > 1:  # packed: the same sample for each channel, interleaved
            samples = np.repeat(samples, self._channels)
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format="s16", layout=self._layout
        )
        frame.sample_rate = self._resample.rate
        frame.pts = self._count * self._resample.frame_samples
        frame.time_base = fractions.Fraction(1, self._resample.rate)
        self._count += 1
        return frame


def _loop_time(monotonic: float) -> float:
    """A `time.monotonic()` instant on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic - time.monotonic())


class RtpArrivals:
    """When each received RTP packet came in, looked up by the decoded frame's `pts`.

    aiortc rebases a decoded frame's `pts` to the stream's first RTP timestamp, so the first
    packet seen is taken as that origin."""

    def __init__(self) -> None:
        self._origin: int | None = None
        self._at: dict[int, float] = {}

    def hook(self, receiver: RTCRtpReceiver) -> bool:
        """Note arrivals on `receiver`; False when this aiortc has no such hook."""
        handle: Callable[..., Awaitable[None]] | None = getattr(
            receiver, "_handle_rtp_packet", None
        )
        if handle is None:
            return False

        async def noted(packet: Any, *args: Any, **kwargs: Any) -> None:
            self.note(int(packet.timestamp), time.monotonic())
            await handle(packet, *args, **kwargs)

        setattr(receiver, "_handle_rtp_packet", noted)  # noqa: B010 (an instance override)
        return True

    def note(self, timestamp: int, at: float) -> None:
        if self._origin is None:
            self._origin = timestamp
        if timestamp not in self._at:
            self._at[timestamp] = at
        if len(self._at) > _ARRIVALS_KEPT:
            del self._at[next(iter(self._at))]

    def pop(self, pts: int | None) -> float | None:
        if pts is None or self._origin is None:
            return None
        return self._at.pop((self._origin + pts) & _RTP_TS_MASK, None)


class WebRtcLeg:
    """One WebRTC call from the bench's side (see the module docstring for its timing)."""

    def __init__(self, on_audio: OnAudio, codec: str = "opus") -> None:
        chosen = CODECS.get(codec.lower())
        if chosen is None:
            raise ValueError(f"unknown WebRTC codec {codec!r}; expected one of {sorted(CODECS)}")
        self.call_id: str | None = None
        self.closed = asyncio.Event()
        self.events: list[dict[str, Any]] = []
        """The node's call events from the `events` data channel, in order."""
        self.late_arrivals = 0
        """Frames credited to aiortc's hand-over time (their packet's arrival was not seen)."""
        self.frames_received = 0
        self._on_audio = on_audio
        self._mime = chosen.mime
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._mic = CallerTrack(chosen.rate, chosen.channels)
        self._arrivals = RtpArrivals()
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._hung_up = False
        self._http: httpx.AsyncClient | None = None
        self._extra: dict[str, Any] = {}
        self._pc.on("connectionstatechange", self._on_connection_state)

    # -- Leg ------------------------------------------------------------------------------
    async def send(self, pcm: bytes) -> None:
        self._mic.push(pcm)

    async def hangup(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        http, call_id = self._http, self.call_id
        if http is not None and call_id is not None and not self.closed.is_set():
            try:
                resp = await http.delete(f"/v1/calls/{call_id}", timeout=HANGUP_TIMEOUT_S)
                if resp.status_code not in (204, 404):
                    log.info("hangup refused", extra={**self._extra, "status": resp.status_code})
            except httpx.HTTPError as exc:
                log.info("hangup request failed", extra={**self._extra, "error": str(exc)})
        await self._close()

    # -- setup ----------------------------------------------------------------------------
    async def connect(self, target: LegTarget, http: httpx.AsyncClient) -> None:
        """Offer, get the node's answer, and wait until the media is connected."""
        self._http = http
        transceiver = self._pc.addTransceiver(self._mic, direction="sendrecv")
        caps = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType == self._mime])
        channel = self._pc.createDataChannel("events")
        channel.on("message", self._on_message)
        if not self._arrivals.hook(transceiver.receiver):
            log.warning("aiortc has no RTP arrival hook: arrivals taken after its jitter buffer")
        with ice_host_addresses(ice_addresses(target.base_url)):
            await self._pc.setLocalDescription(await self._pc.createOffer())
        offer = {"agent": target.agent, "tenant": target.tenant, "type": "offer"}
        offer["sdp"] = self._pc.localDescription.sdp
        try:
            resp = await http.post("/v1/webrtc/offer", json=offer)
        except httpx.HTTPError as exc:
            raise LegError(f"the offer to {target.base_url} failed: {exc}") from exc
        if resp.status_code in REFUSED_STATUSES:
            raise LegRefused(f"the node refused the call: {resp.status_code} {resp.text}")
        if resp.status_code != 200:
            raise LegError(f"the node answered the offer {resp.status_code}: {resp.text}")
        answer = resp.json()
        self.call_id = str(answer["call_id"])
        self._extra = {"call_id": self.call_id, "tenant_id": target.tenant}
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self._spawn(self._receive(transceiver.receiver.track), "webrtc-leg-receive")
        try:
            async with asyncio.timeout(target.connect_timeout_s):
                await self._connected.wait()
        except TimeoutError as exc:
            raise LegError(f"no media connection within {target.connect_timeout_s} s") from exc
        if self.closed.is_set():
            raise LegError(f"the connection failed: {self._pc.connectionState}")
        log.info("webrtc leg connected", extra=self._extra)

    # -- media and events -----------------------------------------------------------------
    async def _receive(self, track: MediaStreamTrack) -> None:
        to16k = MonoResampler(SAMPLE_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            at = self._arrivals.pop(frame.pts)
            if at is None:
                at = time.monotonic()
                self.late_arrivals += 1
            self.frames_received += 1
            pcm = to16k.convert(frame)
            if pcm:
                self._on_audio(at, pcm)

    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            log.info("ignored a data channel message that is not JSON", extra=self._extra)
            return
        if not isinstance(event, dict):
            return
        self.events.append(event)
        if event.get("type") == "ended":
            self.closed.set()

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self.closed.set()
            self._connected.set()  # wakes `connect`, which then sees `closed`

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self) -> None:
        self._mic.stop()
        await self._pc.close()
        self.closed.set()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))


def ice_addresses(base_url: str) -> tuple[str, ...] | None:
    """Loopback only for a node on a loopback address; else aioice's default interfaces."""
    host = urllib.parse.urlsplit(base_url).hostname or ""
    if host == "localhost":
        return LOOPBACK
    try:
        return LOOPBACK if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


@asynccontextmanager
async def open_leg(
    target: LegTarget, on_audio: OnAudio, *, codec: str | None = None
) -> AsyncIterator[WebRtcLeg]:
    """A connected WebRTC call to `target.agent`; hung up on exit.

    `codec`: opus or pcmu (default: the target's `webrtc_codec` when it has one, else opus)."""
    chosen = codec or str(getattr(target, "webrtc_codec", "opus"))
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    async with httpx.AsyncClient(
        base_url=target.base_url, headers=headers, timeout=target.connect_timeout_s
    ) as http:
        leg = WebRtcLeg(on_audio, chosen)
        try:
            await leg.connect(target, http)
            yield leg
        finally:
            await leg.hangup()


if TYPE_CHECKING:  # the transport registry's signature (bench.wire.leg.open_transport)
    _OPENER: OpenLeg = open_leg
