"""A browser call over WebRTC (aiortc): answer an offer, then expose the call's audio as a
`Transport` and its control as a `Call`.

The answer carries every gathered ICE candidate (no trickle). The browser creates a data
channel labelled `events`; the node sends the call's events on it as JSON text and reads
`{"type": "dtmf", "digits": "..."}` from it. The peer connection, its tracks and this call's
tasks are closed on every path: `hangup()`, the peer closing, ICE failure, or no connection
within `connect_timeout_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Final

import msgspec
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

from config.schema import WebRtcSettings
from core.tasks import OwnedTasks
from media.call import Call, CallControlError, CallInfo, CallSignal, Dtmf, RemoteHangup
from media.clock import Clock, MonotonicClock
from media.webrtc_audio import InboundAudio, OutboundAudio, WebRtcTransport
from media.webrtc_jitter import without_playout_delay
from media.webrtc_sdp import (
    SUPPORTED_CODECS,
    CandidatePolicy,
    SdpError,
    check_offer,
    encoder_format,
    ice_host_addresses,
    is_loopback,
    keep_candidates,
)

__all__ = ["SdpError", "WebRtcCall", "WebRtcOptions", "answer_offer"]

log = logging.getLogger(__name__)

EVENTS_CHANNEL: Final = "events"
HANGUP_GRACE_S: Final = 2.0
"""After `hangup()`, the events channel stays open this long at most for the call's last events
(its outcome); the owner's `close()` usually ends it sooner."""
FLUSH_LIMIT_S: Final = 1.0
"""`close()` waits this long at most for queued events to leave before closing."""
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


class WebRtcOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a node answers browser calls."""

    host_addresses: tuple[str, ...] | None = None
    """Local addresses for ICE host candidates; None: every interface but loopback. When all
    are loopback, the peer's non-loopback candidates are ignored (they cannot be reached)."""
    stun_urls: tuple[str, ...] = ()
    """STUN servers for server-reflexive candidates; none by default (no traffic elsewhere)."""
    connect_timeout_s: float = 20.0
    inbound_buffer_frames: int = 50
    """1 s of caller audio may wait for the pipeline; older frames are dropped past that."""
    outbound_buffer_frames: int = 25
    """0.5 s of agent audio may wait for the encoder; `write` waits while it is full."""
    event_backlog: int = 256
    """Events kept for the data channel until the browser opens it (oldest dropped)."""
    allowed_networks: tuple[str, ...] = ()
    """Networks an offer's ICE candidates may name (`CandidatePolicy`); empty: any public or
    private unicast address (loopback too when `host_addresses` are all loopback)."""
    max_candidates: int = 16
    """An offer's first this-many acceptable ICE candidates are used; the rest are dropped."""

    @classmethod
    def from_settings(cls, settings: WebRtcSettings) -> WebRtcOptions:
        """The node's `[webrtc]` settings (no `host_addresses`: every interface but loopback)."""
        return cls(
            host_addresses=settings.host_addresses or None,
            stun_urls=settings.stun_urls,
            connect_timeout_s=settings.connect_timeout_s,
            inbound_buffer_frames=settings.inbound_buffer_frames,
            outbound_buffer_frames=settings.outbound_buffer_frames,
            event_backlog=settings.event_backlog,
            allowed_networks=settings.allowed_networks,
            max_candidates=settings.max_candidates,
        )


class _DataChannelMessage(msgspec.Struct, frozen=True):
    type: str
    digits: str = ""


class WebRtcCall(Call):
    """One browser call: its peer connection, audio transport, signals and event channel."""

    def __init__(self, info: CallInfo, pc: RTCPeerConnection, options: WebRtcOptions, clock: Clock):
        self.info = info
        self._pc = pc
        self._options = options
        self._extra = {"call_id": info.call_id, "tenant_id": info.tenant_id}
        self._source = InboundAudio(options.inbound_buffer_frames, self._extra)
        self._clock = clock
        self._sink = OutboundAudio(options.outbound_buffer_frames, clock)
        self.transport = WebRtcTransport(self._source, self._sink, self.close)
        self._signals: asyncio.Queue[CallSignal] = asyncio.Queue(maxsize=64)
        self._channel: RTCDataChannel | None = None
        self._backlog: deque[str] = deque(maxlen=options.event_backlog)
        self._connected = asyncio.Event()
        self._settled = asyncio.Event()
        """Set once the media connected or the call closed, whichever came first."""
        self._closed = asyncio.Event()
        self._closing = False
        self._hung_up = False
        self._tasks = OwnedTasks(info.call_id, log=log, extra=self._extra)
        self.answer_sdp = ""
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("datachannel", self._on_datachannel)

    # -- Call ---------------------------------------------------------------------------
    async def hangup(self, reason: str = "normal") -> None:
        """End the call's audio now (the inbound iterator ends, writes are discarded). The peer
        connection stays up for the call's last events until `close()`, or `HANGUP_GRACE_S`."""
        if self._hung_up or self._closing:
            return
        self._hung_up = True
        log.info("webrtc call hung up", extra={**self._extra, "reason": reason})
        self._sink.close()
        self._source.end()
        self._tasks.spawn(self._close_after_grace(reason), "webrtc-hangup")

    async def _close_after_grace(self, reason: str) -> None:
        await self._clock.sleep_until(self._clock.now() + HANGUP_GRACE_S)
        await self.close(reason)

    async def transfer(self, target: str) -> None:
        raise CallControlError("a WebRTC call cannot be transferred", kind="unsupported")

    async def send_dtmf(self, digits: str) -> None:
        self.send_message(msgspec.json.encode({"type": "dtmf_sent", "digits": digits}).decode())

    async def next_signal(self) -> CallSignal:
        return await self._signals.get()

    async def wait_media(self) -> bool:
        """True once the browser's media connected; False when the call closed first (the
        offer was never completed): the agent starts only on True."""
        await self._settled.wait()
        return self._connected.is_set() and not self._closing

    # -- LiveCall (control_api.calls) ------------------------------------------------------
    @property
    def control(self) -> Call:
        return self

    def publish(self, event: object) -> None:
        """Send a call event (a msgspec Struct) to the browser as JSON."""
        self.send_message(msgspec.json.encode(event).decode())

    # -- events to the browser ------------------------------------------------------------
    def send_message(self, text: str) -> None:
        """Send one text message on the `events` channel, or keep it until the channel opens."""
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(text)
        elif not self._closing:
            self._backlog.append(text)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closing

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self, reason: str = "normal") -> None:
        """Close the peer connection, tracks and tasks (idempotent; later callers wait)."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        log.info("webrtc call closing", extra={**self._extra, "reason": reason})
        try:
            self._sink.close()
            self._source.end()
            await self._flush_channel()
            self._tasks.cancel_all()
            try:
                await self._pc.close()
            except Exception:  # aiortc can fail half-way on a connection that never started
                log.warning("peer connection close failed", extra=self._extra, exc_info=True)
            await self._tasks.wait()
        finally:
            self._backlog.clear()
            self._closed.set()
            self._settled.set()

    async def _flush_channel(self) -> None:
        """Wait (briefly) until the events queued on the channel have been sent."""
        channel = self._channel
        if channel is None or channel.readyState != "open" or channel.bufferedAmount == 0:
            return
        sent = asyncio.Event()
        channel.bufferedAmountLowThreshold = 0
        channel.on("bufferedamountlow", sent.set)
        try:
            async with asyncio.timeout(FLUSH_LIMIT_S):
                await sent.wait()
        except TimeoutError:
            log.info("events left unsent at close", extra=self._extra)
        finally:
            channel.remove_listener("bufferedamountlow", sent.set)

    async def _negotiate(self, offer_sdp: str) -> None:
        pc = self._pc
        transceiver = pc.addTransceiver(self._sink.track, direction="sendrecv")
        transceiver.setCodecPreferences(_codec_preferences())
        without_playout_delay(transceiver.receiver)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            answer = await pc.createAnswer()
            with ice_host_addresses(self._options.host_addresses):
                await pc.setLocalDescription(answer)
        except (
            ValueError,
            InternalError,
            InvalidAccessError,
            InvalidStateError,
            OperationError,
        ) as exc:
            raise SdpError(f"the offer was rejected: {exc}") from exc
        except (LookupError, AttributeError, TypeError) as exc:
            # aiortc trips over some malformed offers with internal errors: still the offer's fault
            log.warning("aiortc rejected an offer", extra=self._extra, exc_info=True)
            raise SdpError(f"the offer was rejected: {type(exc).__name__}: {exc}") from exc
        self.answer_sdp = pc.localDescription.sdp
        self._encode_as(self.answer_sdp)
        track = transceiver.receiver.track
        if track is not None:
            self._tasks.spawn(self._source.read_from(track), "webrtc-inbound")
        else:
            self._source.end()
        self._tasks.spawn(self._connect_watchdog(), "webrtc-watchdog")
        log.info("webrtc call answered", extra=self._extra)

    def _encode_as(self, answer_sdp: str) -> None:
        """The agent's frames go to the encoder in its own format (`AgentAudioTrack.encode_as`)."""
        chosen = encoder_format(answer_sdp)
        if chosen is None:
            return
        try:
            self._sink.track.encode_as(*chosen)
        except ValueError as exc:  # a rate it cannot make: the encoder converts, 20 ms later
            log.warning("webrtc: encoder format kept", extra={**self._extra, "error": str(exc)})

    async def _connect_watchdog(self) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), self._options.connect_timeout_s)
        except TimeoutError:
            log.warning("webrtc call never connected", extra=self._extra)
            self._remote_ended("connect timeout")
            await self.close("connect timeout")

    def _remote_ended(self, reason: str) -> None:
        if not self._closing:
            try:
                self._signals.put_nowait(RemoteHangup(reason))
            except asyncio.QueueFull:
                log.warning("signal queue full; remote hangup not queued", extra=self._extra)

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        log.debug("webrtc connection state", extra={**self._extra, "state": state})
        if state == "connected":
            self._connected.set()
            self._settled.set()
        elif state in ("failed", "closed") and not self._closing:
            self._remote_ended(f"connection {state}")
            self._tasks.spawn(self.close(f"connection {state}"), "webrtc-close")

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL or self._closing:
            return
        self._channel = channel
        channel.on("message", self._on_message)
        if channel.readyState == "open":
            self._flush_backlog()
        else:
            channel.on("open", self._flush_backlog)

    def _flush_backlog(self) -> None:
        channel = self._channel
        while channel is not None and self._backlog and channel.readyState == "open":
            channel.send(self._backlog.popleft())

    def _on_message(self, message: str | bytes) -> None:
        try:
            msg = msgspec.json.decode(message, type=_DataChannelMessage)
        except msgspec.DecodeError as exc:
            log.info("ignored a data channel message", extra={**self._extra, "error": str(exc)})
            return
        if msg.type != "dtmf" or not msg.digits or not set(msg.digits) <= DTMF_DIGITS:
            log.info("ignored a data channel message", extra={**self._extra, "kind": msg.type})
            return
        for digit in msg.digits:
            try:
                self._signals.put_nowait(Dtmf(digit))
            except asyncio.QueueFull:
                log.warning("signal queue full; DTMF dropped", extra=self._extra)
                return


def _codec_preferences() -> list[Any]:
    wanted = [c.lower() for c in SUPPORTED_CODECS]
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    return sorted(
        (c for c in codecs if c.mimeType.lower() in wanted),
        key=lambda c: wanted.index(c.mimeType.lower()),
    )


async def answer_offer(
    offer_sdp: str,
    info: CallInfo,
    options: WebRtcOptions | None = None,
    clock: Clock | None = None,
) -> WebRtcCall:
    """Answer a browser's offer: the returned call has `answer_sdp` and is connecting.

    Raises `SdpError` naming the problem when the offer cannot be answered; nothing is left
    open then. The caller owns the call and must `close()` it.
    """
    options = options or WebRtcOptions()
    check_offer(offer_sdp)
    hosts = options.host_addresses
    loopback_only = bool(hosts) and all(map(is_loopback, hosts or ()))
    if loopback_only:  # the peer's other candidates cannot be reached from loopback
        offer_sdp = keep_candidates(offer_sdp, is_loopback)
    policy = CandidatePolicy(options.allowed_networks, loopback=loopback_only)
    offer_sdp = keep_candidates(offer_sdp, policy.allows, options.max_candidates)
    config = RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in options.stun_urls])
    pc = RTCPeerConnection(config)
    call = WebRtcCall(info, pc, options, clock or MonotonicClock())
    try:
        await call._negotiate(offer_sdp)
    except BaseException:
        await call.close("offer failed")
        raise
    return call
