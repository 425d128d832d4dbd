"""AudioSocket audio at the edge: the caller's signed-linear audio in, the agent's frames out.

Inbound audio (any AudioSocket rate, any chunk size) is resampled to 16 kHz and cut into
20 ms `AudioFrame`s in a bounded buffer. Outbound, the agent's 16 kHz frames wait in a bounded
queue; the call's sender takes exactly 20 ms at the caller's rate per tick (`next_payload`),
so agent audio goes back in the format the caller sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from media.frames import FRAME_MS, SAMPLE_RATE, AudioFrame
from media.inbound import InboundFrames
from media.outbound import OutboundFrames
from media.resample import SUPPORTED_RATES, StreamResampler

log = logging.getLogger(__name__)

Samples = npt.NDArray[np.int16]
_EMPTY: Final = np.zeros(0, dtype=np.int16)


class RateConverter(Protocol):
    def process(self, samples: Samples) -> Samples: ...

    def reset(self) -> None: ...


class _SoxrStream:
    """The same low-latency soxr engine as `StreamResampler`, for AudioSocket rates it does not
    list (12, 32, 96 and 192 kHz)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._stream = soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="float32", quality="HQ", vr=True
        )

    def process(self, samples: Samples) -> Samples:
        out = np.asarray(self._stream.resample_chunk(samples.astype(np.float32)))
        result: Samples = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
        return result

    def reset(self) -> None:
        self._stream.clear()


def rate_converter(in_rate: int, out_rate: int) -> RateConverter:
    """A streaming converter between two AudioSocket/internal rates."""
    if in_rate in SUPPORTED_RATES and out_rate in SUPPORTED_RATES:
        return StreamResampler(in_rate, out_rate)
    return _SoxrStream(in_rate, out_rate)


def frame_samples(rate: int) -> int:
    """Samples in 20 ms at `rate` (882 at 44.1 kHz)."""
    return rate * FRAME_MS // 1000


class CallerAudio(InboundFrames):
    """The caller's audio as 16 kHz 20 ms frames, buffered up to `max_frames` (oldest dropped)."""

    def __init__(self, max_frames: int, log_extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(max_frames)
        self._rate = 0
        self._converter: RateConverter | None = None
        self._extra = dict(log_extra or {})

    def push(self, pcm: bytes, rate: int) -> None:
        """Add little-endian int16 samples at `rate` Hz; whole 20 ms frames become readable."""
        if self.ended or not pcm:
            return
        if self._converter is None or rate != self._rate:
            self._converter = rate_converter(rate, SAMPLE_RATE)
            self._rate = rate
        self.add_samples(self._converter.process(np.frombuffer(pcm, dtype="<i2").astype(np.int16)))


class AgentAudio(OutboundFrames):
    """The agent's frames waiting to be sent: at most `max_frames` (a latency choice)."""

    def __init__(self, max_frames: int) -> None:
        super().__init__(max_frames)
        self._queued = asyncio.Event()
        self._rate = 0
        self._converter: RateConverter | None = None
        self._pending = _EMPTY
        self._starved = False

    async def write(self, frame: AudioFrame) -> None:
        await super().write(frame)
        self._queued.set()  # once closed, it is set already

    def clear(self) -> int:
        self._pending = _EMPTY
        if self._converter is not None:
            self._converter.reset()
        return super().clear()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing converted left to send."""
        return not self.buffered and not len(self._pending)

    async def wait_queued(self) -> None:
        """Return once a frame is queued (or the sink is closed)."""
        while not self.buffered and not self.closed:
            self._queued.clear()
            await self._queued.wait()

    def next_payload(self, rate: int) -> bytes | None:
        """Exactly 20 ms of agent audio at `rate` Hz (LE int16), or None when there is none.

        A partial last frame (the resampler's held-back tail) waits one tick for more audio
        and is then padded with silence.
        """
        if rate != self._rate or self._converter is None:
            self._converter = rate_converter(SAMPLE_RATE, rate)
            self._rate = rate
            self._pending = _EMPTY
        need = frame_samples(rate)
        while len(self._pending) < need and (frame := self.take()) is not None:
            out = self._converter.process(frame.samples)
            self._pending = np.concatenate([self._pending, out]) if len(self._pending) else out
        if len(self._pending) >= need:
            self._starved = False
            payload, self._pending = self._pending[:need], self._pending[need:]
        elif len(self._pending) and self._starved:
            self._starved = False
            payload = np.concatenate([self._pending, np.zeros(need - len(self._pending), np.int16)])
            self._pending = _EMPTY
        else:
            self._starved = bool(len(self._pending))
            return None
        return np.ascontiguousarray(payload, dtype="<i2").tobytes()

    def close(self) -> None:
        """Drop what is queued and let blocked writers return; later writes are discarded."""
        super().close()
        self._queued.set()
