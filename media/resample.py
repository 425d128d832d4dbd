"""Sample-rate conversion with soxr: a streaming resampler for live audio and a one-shot one.

Live audio uses soxr's variable-rate engine (`vr=True`, fixed ratio). The default fixed-rate
engine works in large DFT blocks: fed 20 ms chunks it returns nothing for several chunks and
then a burst (8 kHz -> 16 kHz at HQ: ~100 ms of audio every fifth chunk), which would add
~100 ms of latency and jitter to every telephony call in each direction. The variable-rate
engine returns output for every chunk with a steady delay of 10-30 ms (by rate pair) and
more than 110 dB SNR and alias rejection, which is far beyond G.711 or Opus. Its output
carries a fixed sub-2-sample group delay that it does not compensate, so it is not
sample-aligned with `resample` (the one-shot, linear-phase HQ conversion used for files).
`StreamResampler(..., low_latency=False)` selects the block engine instead.

Samples go in and come out as int16, but soxr works on float32 here: soxr's own int16 output
adds TPDF dither (random, so the same input gives different output), whereas float32 in,
round-and-saturate out is deterministic, and a stream's output is bit-identical however it
is cut into chunks.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import soxr

__all__ = [
    "SUPPORTED_RATES",
    "StreamResampler",
    "UnsupportedRateError",
    "as_samples",
    "check_rate",
    "resample",
]

SUPPORTED_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)

Samples = npt.NDArray[np.int16]


class UnsupportedRateError(ValueError):
    """A sample rate outside `SUPPORTED_RATES`."""

    def __init__(self, rate: object) -> None:
        supported = ", ".join(str(r) for r in SUPPORTED_RATES)
        super().__init__(f"unsupported sample rate {rate!r} Hz (supported: {supported})")
        self.rate = rate


def _to_int16(y: npt.NDArray[np.float32]) -> Samples:
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def check_rate(rate: object) -> int:
    """Return `rate` if it is a supported sample rate, else raise `UnsupportedRateError`."""
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer):
        raise UnsupportedRateError(rate)
    if int(rate) not in SUPPORTED_RATES:
        raise UnsupportedRateError(rate)
    return int(rate)


def as_samples(samples: npt.ArrayLike) -> Samples:
    """A 1-D, C-contiguous, native int16 view or copy of `samples`; ValueError otherwise."""
    arr = np.asarray(samples)
    if arr.dtype.kind != "i" or arr.dtype.itemsize != 2:
        raise ValueError(f"expected int16 samples, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array of samples, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int16)


class StreamResampler:
    """Converts one continuous int16 mono stream from `in_rate` to `out_rate`, chunk by chunk.

    Feed chunks of any size in order with `process`; the concatenated output is the resampled
    stream, with no discontinuities at chunk edges (the filter state carries across calls).
    Output per call need not match the input duration exactly (the resampler holds back a few
    milliseconds), so callers re-frame it. At the end of the stream call `flush()` (or pass
    `last=True`) to get the held-back tail; the resampler is then ready for a new stream.
    When the rates are equal, `process` returns its input unchanged (no copy).
    """

    def __init__(self, in_rate: int, out_rate: int, *, low_latency: bool = True) -> None:
        self.in_rate: Final = check_rate(in_rate)
        self.out_rate: Final = check_rate(out_rate)
        self._stream: soxr.ResampleStream | None = None
        if self.in_rate != self.out_rate:
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ", vr=low_latency
            )

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    def process(self, samples: npt.ArrayLike, last: bool = False) -> Samples:
        """Resample the next chunk of the stream; with `last=True`, also flush the tail."""
        x = as_samples(samples)
        if self._stream is None:
            return x
        out = self._stream.resample_chunk(x.astype(np.float32), last=last)
        if last:
            self._stream.clear()
        return _to_int16(out)

    def flush(self) -> Samples:
        """End the stream: return what the resampler still holds, and reset it."""
        return self.process(np.zeros(0, dtype=np.int16), last=True)

    def reset(self) -> None:
        """Drop any held-back audio and start a new stream."""
        if self._stream is not None:
            self._stream.clear()


def resample(samples: npt.ArrayLike, in_rate: int, out_rate: int) -> Samples:
    """Resample a whole signal at once (soxr HQ, linear phase, delay compensated).

    The output has `round(len * out_rate / in_rate)` samples, aligned with the input.
    """
    x = as_samples(samples)
    if check_rate(in_rate) == check_rate(out_rate):
        return x.copy()
    if x.size == 0:
        return np.zeros(0, dtype=np.int16)
    return _to_int16(soxr.resample(x.astype(np.float32), in_rate, out_rate, quality="HQ"))
