"""Self-interruption guard: the agent's own voice coming back in the caller's audio.

On speakerphones and some trunks the caller's audio carries the agent's speech back, a little
later and quieter. Taken as caller speech it would pause the agent and barge in on itself.
`EchoGuard` (sans-IO: samples and times in, a verdict out) keeps the last second of what
playout sent, each frame at its 20 ms slot, and for an inbound frame asks whether it is
explained by that audio at one delay (from `lead_s` before the slot, as a transport may send
ahead, to `max_delay_s` after it) and one gain: the delay and gain that explain the most of
the last `window_s` of inbound audio (normalised cross-correlation, found with one FFT), then
the frame's residual after subtracting the scaled, delayed outbound audio. A frame whose
residual keeps less than `residual` of its energy is echo; the session gates its speech
probability to 0. The caller talking over the echo (double talk) leaves a residual as loud
as the caller's voice, so it still counts as speech and still barges in.

The model is a delay and a gain (what a trunk's or a phone's loop-back does, codecs
included); a room's reverberant echo is only partly explained by it. The fit found for one
frame is tried first on the next ones; the search runs again when it no longer explains them.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from media.frames import SAMPLE_RATE

F64 = npt.NDArray[np.float64]
ECHO_SUPPRESSED = Counter(
    "voicenode_echo_suppressed_frames_total",
    "Inbound frames taken as the agent's own voice coming back (echo), not as caller speech",
)


class EchoGuard:
    """Outbound frames in (`played`), inbound frames in (`heard`), a verdict on the last
    inbound frame out (`explains`)."""

    def __init__(
        self,
        *,
        max_delay_s: float = 0.3,
        lead_s: float = 0.06,
        window_s: float = 0.2,
        residual: float = 0.25,
        history_s: float = 1.0,
        rate: int = SAMPLE_RATE,
    ) -> None:
        self._rate = rate
        self._dmin = -round(lead_s * rate)  # delays in samples, inbound index - outbound index
        self._dmax = round(max_delay_s * rate)
        self._window = round(window_s * rate)
        self._residual = residual
        self._keep = round(history_s * rate)
        self._out: deque[tuple[int, F64]] = deque()  # (first sample's index, samples)
        self._in: F64 = np.zeros(0)  # the last `window_s` of inbound audio
        self._in_end = 0  # the index after the last inbound sample
        self._frame = 0  # samples in the last inbound frame
        self._fit: tuple[int, float] | None = None  # delay (samples), gain
        self.suppressed = 0

    def played(self, samples: npt.NDArray[np.int16], at: float) -> None:
        """An outbound frame, sent for the slot starting at `at` (clock seconds)."""
        start = round(at * self._rate)
        self._out.append((start, samples.astype(np.float64)))
        while self._out and self._out[0][0] + len(self._out[0][1]) < start - self._keep:
            self._out.popleft()

    def heard(self, samples: npt.NDArray[np.int16], now: float) -> None:
        """An inbound frame, arrived at `now`. Frames are taken as contiguous (the sender's
        clock) while arrivals stay within 100 ms of that; past it the timeline restarts."""
        n = len(samples)
        end = self._in_end + n
        if self._frame == 0 or abs(end - round(now * self._rate)) > self._rate // 10:
            end = round(now * self._rate)
            self._in = np.zeros(0)
            self._fit = None
        self._in = np.concatenate([self._in, samples.astype(np.float64)])[-self._window :]
        self._in_end = end
        self._frame = n

    def explains(self) -> bool:
        """The last inbound frame is mostly the agent's own audio coming back (counted)."""
        x = self._in[-self._frame :] if self._frame else self._in[:0]
        energy = float(np.dot(x, x))
        if energy == 0.0:
            return False
        echo = self._fit is not None and self._left(x, *self._fit) < self._residual * energy
        if not echo:
            self._fit = self._search()
            echo = self._fit is not None and self._left(x, *self._fit) < self._residual * energy
        if echo:
            self.suppressed += 1
            ECHO_SUPPRESSED.inc()
        return echo

    def _left(self, x: F64, delay: int, gain: float) -> float:
        """The energy of the frame `x` (the last one heard) left after subtracting the
        outbound audio at `delay`, scaled by `gain`."""
        start = self._in_end - len(x) - delay
        e = x - gain * self._outbound(start, start + len(x))
        return float(np.dot(e, e))

    def _search(self) -> tuple[int, float] | None:
        """The delay and gain that explain the most of the inbound window, if any."""
        x = self._in
        m = len(x)
        first = self._in_end - m
        r = self._outbound(first - self._dmax, self._in_end - self._dmin)
        if m == 0 or not r.any():
            return None
        nfft = 1 << (len(r) + m).bit_length()
        spectrum = np.fft.rfft(r, nfft) * np.conj(np.fft.rfft(x, nfft))
        c = np.fft.irfft(spectrum, nfft)[: len(r) - m + 1]  # c[k] = sum x[n] r[n + k]
        squares = np.concatenate([[0.0], np.cumsum(r * r)])
        er = squares[m:] - squares[:-m]  # the outbound energy under the window at each k
        explained = np.where(er > 0, c * c / np.maximum(er, 1e-9), 0.0)
        k = int(np.argmax(explained))
        if er[k] <= 0:
            return None
        return self._dmax - k, float(c[k] / er[k])

    def _outbound(self, start: int, stop: int) -> F64:
        """Outbound samples with indices [start, stop), silence where nothing was sent."""
        out = np.zeros(max(0, stop - start))
        for first, samples in self._out:
            lo, hi = max(start, first), min(stop, first + len(samples))
            if lo < hi:
                out[lo - start : hi - start] = samples[lo - first : hi - first]
        return out
