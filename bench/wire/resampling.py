"""Audio at a leg's edge: decoded frames of any rate and layout to 16 kHz mono int16 and back.

libswresample (through PyAV) holds back only its filter's half length and compensates for it:
the first chunk of a stream comes out short by that much (1 ms from 48 kHz, 2 ms from 8 kHz),
every later 20 ms chunk comes out whole, and no chunk waits for the next one. So a chunk's
samples start at most 2 ms before the packet they are credited to. (soxr's streaming engine,
which the node uses, holds back 10-30 ms: too much for a measurement at the caller's ear.)
"""

from __future__ import annotations

import fractions

import av
import numpy as np

from bench.wire.leg import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE


def pcm_frame(pcm: bytes, rate: int, pts: int) -> av.AudioFrame:
    """Mono int16 PCM as a PyAV frame at `rate` Hz, its `pts` counted in samples."""
    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


class MonoResampler:
    """One stream's frames converted to mono int16 PCM at `rate` Hz, chunk by chunk."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def convert(self, frame: av.AudioFrame) -> bytes:
        """The PCM for `frame` (a few samples short for the stream's first frame)."""
        if frame.sample_rate == self.rate and frame.format.name == "s16" and _mono(frame):
            return bytes(frame.to_ndarray().astype("<i2", copy=False).tobytes())
        out = self._resampler.resample(frame)
        return b"".join(f.to_ndarray().astype("<i2", copy=False).tobytes() for f in out)


class FrameResampler:
    """16 kHz 20 ms frames to 20 ms frames at `rate`, each exactly a frame long: the stream's
    first frame, short by the filter delay, is padded at its front (an encoder that re-chunks
    its input would otherwise hold back nearly a frame for the rest of the stream)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.frame_samples = rate * FRAME_MS // 1000
        self._resampler = MonoResampler(rate)
        self._count = 0

    def convert(self, pcm: bytes) -> bytes:
        """One 20 ms frame of 16 kHz mono int16 PCM as 20 ms of mono int16 PCM at `rate`."""
        size = self.frame_samples * 2
        out = self._resampler.convert(pcm_frame(pcm, SAMPLE_RATE, self._count * FRAME_SAMPLES))
        self._count += 1
        return out.rjust(size, b"\0")[-size:]


def _mono(frame: av.AudioFrame) -> bool:
    return len(frame.layout.channels) == 1
