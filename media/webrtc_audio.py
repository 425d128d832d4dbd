"""WebRTC audio at the edge: decoded aiortc frames in, 20 ms frames out to the encoder.

Inbound: the peer's decoded frames (Opus: 48 kHz stereo, PCMU: 8 kHz mono, s16) are mixed to
mono, resampled to 16 kHz and cut into 20 ms `AudioFrame`s in a bounded buffer; each packet's
frame is readable as soon as the packet is decoded (`media.webrtc_resample`).
Outbound: `AgentAudioTrack.recv()` is what aiortc's sender calls for the next frame to
encode; it paces itself to one frame per 20 ms and hands over the agent's queued frames, or
silence when none is queued, already in the negotiated encoder's rate and channels
(`encode_as`), so the encoder holds none of it back for the next frame.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from prometheus_client import Counter

from media.clock import Clock
from media.frames import FRAME_MS, SAMPLE_RATE, SILENCE_PCM
from media.inbound import InboundFrames
from media.outbound import OutboundFrames
from media.transport import Transport
from media.webrtc_resample import EncoderFrames, LowDelayResampler

log = logging.getLogger(__name__)

FRAME_S: Final = FRAME_MS / 1000
# Outbound frames whose turn came more than one frame late, and inbound frames dropped because
# the buffer was full (the call's consumer fell behind). Both should stay at zero.
FRAMES_LATE = Counter(
    "voicenode_webrtc_frames_late_total",
    "WebRTC audio frames handed over more than one frame period late",
    ["direction"],
)
FRAMES_DROPPED = Counter(
    "voicenode_webrtc_frames_dropped_total",
    "WebRTC audio frames dropped because a bounded buffer was full",
    ["direction"],
)
FRAMES_LATE.labels(direction="out")  # exported as 0 from the start
FRAMES_DROPPED.labels(direction="in")
# Behind by more than this, the outbound pacer stops trying to catch up and restarts its
# schedule from now (a burst of catch-up frames would only reach the far end's jitter buffer).
_RESYNC_S: Final = 0.2


def mono_s16(frame: av.AudioFrame) -> npt.NDArray[np.int16]:
    """A decoded frame's samples as mono int16 (channels averaged)."""
    fmt = frame.format.name
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    if fmt == "s16":  # packed: one plane, channels interleaved
        samples = data.reshape(-1, channels)
    elif fmt == "s16p":  # planar: one plane per channel
        samples = data.reshape(channels, -1).T
    else:
        raise ValueError(f"unsupported decoded audio format {fmt!r}; expected s16 or s16p")
    if channels == 1:
        mono: npt.NDArray[np.int16] = np.ascontiguousarray(samples[:, 0], dtype=np.int16)
        return mono
    mixed: npt.NDArray[np.int16] = (samples.astype(np.int32).sum(axis=1) // channels).astype(
        np.int16
    )
    return mixed


class InboundAudio(InboundFrames):
    """The peer's audio as 16 kHz 20 ms frames, buffered up to `max_frames` (oldest dropped)."""

    def __init__(self, max_frames: int, log_extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(max_frames)
        self._resampler: LowDelayResampler | None = None
        self._extra = dict(log_extra or {})

    async def read_from(self, track: MediaStreamTrack) -> None:
        """Pull decoded frames from `track` until it ends; then the iterator ends."""
        try:
            while True:
                try:
                    decoded = await track.recv()
                except MediaStreamError:
                    break
                if not isinstance(decoded, av.AudioFrame):
                    continue
                try:
                    self.push(mono_s16(decoded), decoded.sample_rate)
                except ValueError as exc:
                    log.warning(
                        "dropped an inbound frame", extra={**self._extra, "error": str(exc)}
                    )
        finally:
            self.end()

    def push(self, samples: npt.NDArray[np.int16], rate: int) -> None:
        """Add mono int16 samples at `rate` Hz; complete 20 ms frames become readable."""
        if self._resampler is None or self._resampler.in_rate != rate:
            self._resampler = LowDelayResampler(rate, SAMPLE_RATE)  # ValueError: unsupported
        if dropped := self.add_samples(self._resampler.process(samples)):
            FRAMES_DROPPED.labels(direction="in").inc(dropped)


class OutboundAudio(OutboundFrames):
    """The agent's frames waiting for the encoder: at most `max_frames` (a latency choice)."""

    def __init__(self, max_frames: int, clock: Clock) -> None:
        super().__init__(max_frames)
        self.track = AgentAudioTrack(self, clock)

    def next_pcm(self) -> bytes:
        """The next frame for the encoder: the agent's oldest queued frame, else silence."""
        frame = self.take()
        return SILENCE_PCM if frame is None else frame.pcm

    def close(self) -> None:
        """Drop what is queued and let blocked writers return; later writes are discarded."""
        super().close()
        self.track.stop()


class AgentAudioTrack(MediaStreamTrack):
    """An outbound audio track: one 20 ms frame per 20 ms from an `OutboundAudio`, 16 kHz mono
    until `encode_as` names the encoder's format."""

    kind = "audio"

    def __init__(self, source: OutboundAudio, clock: Clock) -> None:
        super().__init__()
        self._source = source
        self._clock = clock
        self._start: float | None = None
        self._sent = 0
        self._frames = EncoderFrames()

    @property
    def rate(self) -> int:
        """The rate of the frames handed to the encoder."""
        return self._frames.rate

    @property
    def channels(self) -> int:
        return self._frames.channels

    def encode_as(self, rate: int, channels: int) -> None:
        """Hand the encoder frames at its own `rate` and `channels` (before media flows): aiortc's
        encoders convert anything else to whole frames of theirs, which keeps back most of each
        frame until the next one (20 ms on every frame). ValueError: a rate it cannot make."""
        if (rate, channels) != (self.rate, self.channels):
            self._frames = EncoderFrames(rate, channels)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock.now()
        if self._start is None:
            self._start = now
        due = self._start + self._sent * FRAME_S
        if due > now:
            await self._clock.sleep_until(due)
            if self.readyState != "live":
                raise MediaStreamError
        elif now - due > FRAME_S:
            FRAMES_LATE.labels(direction="out").inc()
            if now - due > _RESYNC_S:
                self._start = now - self._sent * FRAME_S
        frame = self._frames.frame(self._source.next_pcm(), self._sent)
        self._sent += 1
        return frame


class WebRtcTransport(Transport):
    """A WebRTC call's audio both ways; `close()` closes the whole peer connection."""

    def __init__(
        self,
        source: InboundAudio,
        sink: OutboundAudio,
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.source = source
        self.sink = sink
        self._close = close

    async def close(self) -> None:
        await self._close()
