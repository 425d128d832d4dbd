"""Rate conversion at the WebRTC edge that holds back no more than its filter needs.

Both ways a call's audio is cut into 20 ms frames after conversion: inbound into the node's
16 kHz frames (`media.inbound`), outbound by aiortc's encoders, which re-chunk their input
into whole codec frames (Opus: 960 samples at 48 kHz, PCMU: 160 at 8 kHz) before encoding.
A converter that returns a chunk's samples a little short (any filter holds back part of its
length) leaves the rest of every frame waiting for the next packet: 20 ms late, in each
direction, for the whole call. And soxr's streaming engine (`media.resample`) holds back
10-30 ms on its own.

libswresample (through PyAV) aligns its output with its input and holds back only its
filter's half length (under 1 ms from 48 kHz), which shows as a short first chunk; every later
chunk comes out whole (for rates with a whole number of samples in 20 ms). `LowDelayResampler`
pads that first chunk at its front, so each chunk in gives its own duration out: the stream is
shifted once, by less than a millisecond, and no frame waits for the next.
"""

from __future__ import annotations

import fractions
from typing import Final

import av
import numpy as np
import numpy.typing as npt

from media.frames import FRAME_MS, SAMPLE_RATE
from media.resample import as_samples, check_rate

Samples = npt.NDArray[np.int16]
_EMPTY: Final = np.zeros(0, dtype=np.int16)


class LowDelayResampler:
    """One continuous mono int16 stream from `in_rate` to `out_rate` (see the module): each
    `process` returns as many samples as its input lasts at `out_rate` (the first padded at
    its front), so a caller cutting 20 ms frames never keeps part of one waiting."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate: Final = check_rate(in_rate)
        self.out_rate: Final = check_rate(out_rate)
        self._swr: av.AudioResampler | None = None
        if self.in_rate != self.out_rate:
            self._swr = av.AudioResampler(format="s16", layout="mono", rate=self.out_rate)
        self._time_base = fractions.Fraction(1, self.in_rate)
        self._in = 0

    def process(self, samples: npt.ArrayLike) -> Samples:
        x = as_samples(samples)
        if self._swr is None or len(x) == 0:
            return x
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.in_rate
        frame.pts = self._in
        frame.time_base = self._time_base
        chunks = [f.to_ndarray().reshape(-1) for f in self._swr.resample(frame)]
        out: Samples = np.concatenate(chunks).astype(np.int16) if chunks else _EMPTY
        first = self._in == 0
        self._in += len(x)
        if first:
            short = self._in * self.out_rate // self.in_rate - len(out)
            if short > 0:
                out = np.concatenate([np.zeros(short, dtype=np.int16), out])
        return out


class EncoderFrames:
    """The node's 16 kHz mono 20 ms frames as 20 ms frames in an encoder's own rate and
    channel count (the same sample in each channel), exactly one frame each: aiortc's
    encoders then encode each frame as it comes instead of holding most of it back."""

    def __init__(self, rate: int = SAMPLE_RATE, channels: int = 1) -> None:
        if channels not in (1, 2):
            raise ValueError(f"an encoder frame has 1 or 2 channels, got {channels}")
        self.rate: Final = check_rate(rate)
        self.channels: Final = channels
        self.frame_samples: Final = self.rate * FRAME_MS // 1000
        self._resampler = LowDelayResampler(SAMPLE_RATE, self.rate)
        self._pending = _EMPTY
        self._layout = "stereo" if channels == 2 else "mono"
        self._time_base = fractions.Fraction(1, self.rate)

    def frame(self, pcm: bytes, index: int) -> av.AudioFrame:
        """Frame number `index` of the stream: one 20 ms frame of 16 kHz int16 PCM converted."""
        samples = self._resampler.process(np.frombuffer(pcm, dtype="<i2"))
        n = self.frame_samples
        pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        if len(pending) < n:  # (not for the rates here: a chunk comes out whole)
            pending = np.concatenate([np.zeros(n - len(pending), dtype=np.int16), pending])
        out, self._pending = pending[:n], pending[n:].copy()
        if self.channels == 2:  # packed: each sample once per channel, interleaved
            out = np.repeat(out, 2)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(out, dtype=np.int16).reshape(1, -1),
            format="s16",
            layout=self._layout,
        )
        frame.sample_rate = self.rate
        frame.pts = index * n
        frame.time_base = self._time_base
        return frame
