"""A narrowband tone detector for answering-machine beeps, sans-IO.

Each 20 ms frame (16 kHz or 8 kHz int16) is measured at a comb of Goertzel bins across the
beep band (`BeepSettings.min_hz`..`max_hz`, 20 Hz apart): the power of single DFT bins, here
evaluated for all bins at once as one product with a precomputed Hann-windowed basis (the same
numbers the Goertzel recurrence gives, without a Python loop per sample). A frame is *tonal*
when one bin holds nearly all of the frame's energy (`purity`, the peak bin's power over what a
pure sinusoid of the frame's energy would give there) and the frame is loud enough. Speech
spreads its energy over harmonics and formants, and DTMF over two tones (each about half), so
neither is tonal; a beep through G.711 stays above 0.9.

A *beep* is a run of tonal frames at one frequency (within `max_drift_hz`) of at least
`min_ms` and at most `max_ms`. `BeepDetector.feed` reports it once the run ends, with the
time it ended (the end of its last tonal frame): the moment to start speaking after it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Final

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec import Meta

__all__ = ["Beep", "BeepDetector", "BeepSettings", "ToneMeasure", "measure_tone"]

BIN_STEP_HZ: Final = 20.0
"""Spacing of the Goertzel bins: a tone falls at most 10 Hz from one (a 0.2-bin offset for a
20 ms frame, under 0.2 dB lost to the Hann window's scalloping)."""


class BeepSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What counts as a beep."""

    min_hz: Annotated[float, Meta(ge=300, le=3400)] = 900.0
    max_hz: Annotated[float, Meta(ge=300, le=3400)] = 2000.0
    min_ms: Annotated[int, Meta(ge=40, le=2000)] = 150
    """The shortest steady tone that is a beep."""
    max_ms: Annotated[int, Meta(ge=100, le=10000)] = 3000
    """A tone longer than this is not a beep (a dial or fax tone, a held note)."""
    purity: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.8
    """The share of a frame's energy its strongest bin must hold."""
    min_level_dbfs: Annotated[float, Meta(ge=-90, le=0)] = -45.0
    """Quieter frames are never tonal (line noise)."""
    max_drift_hz: Annotated[float, Meta(ge=0, le=500)] = 40.0
    """How far the peak may move between frames of one beep."""

    def __post_init__(self) -> None:
        if self.min_hz >= self.max_hz:
            raise ValueError("beep min_hz must be below max_hz")
        if self.min_ms >= self.max_ms:
            raise ValueError("beep min_ms must be below max_ms")


class ToneMeasure(msgspec.Struct, frozen=True):
    """One frame: its strongest bin's frequency, how much of the energy it holds, its level."""

    hz: float
    purity: float
    level_dbfs: float


class Beep(msgspec.Struct, frozen=True, kw_only=True):
    """A beep that has ended."""

    started_s: float
    ended_s: float
    """The end of its last tonal frame, on the caller's clock (`feed`'s `at_s`)."""
    hz: float
    """The mean peak frequency over its frames."""

    @property
    def duration_ms(self) -> float:
        return (self.ended_s - self.started_s) * 1000.0


@lru_cache(maxsize=16)
def _basis(
    rate: int, n: int, min_hz: float, max_hz: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.complex128]]:
    """The bins' frequencies and their windowed complex exponentials, scaled so that a pure
    sinusoid's power at its own bin, over its energy, is 1."""
    freqs = np.arange(min_hz, max_hz + BIN_STEP_HZ / 2, BIN_STEP_HZ)
    window = np.hanning(n + 2)[1:-1]  # no zero end points: every sample counts
    t = np.arange(n) / rate
    basis = window[None, :] * np.exp(-2j * np.pi * freqs[:, None] * t[None, :])
    # a sinusoid A·cos: energy n·A²/2, power at its bin (A/2·Σw)²  →  ratio (Σw)²/(2n)
    scale = 2.0 * n / float(window.sum()) ** 2
    return freqs, basis * np.sqrt(scale)


def measure_tone(
    samples: npt.NDArray[np.int16], rate: int, settings: BeepSettings | None = None
) -> ToneMeasure:
    """The frame's strongest bin in the beep band, its purity and the frame's level."""
    s = settings or BeepSettings()
    x = samples.astype(np.float64)
    energy = float(np.dot(x, x))
    n = len(x)
    if n == 0 or energy <= 0.0:
        return ToneMeasure(0.0, 0.0, -120.0)
    level = 10.0 * np.log10(energy / n / 32768.0**2)
    x = x - x.mean()  # a DC offset is not tone, and not energy the tone should answer for
    energy = max(float(np.dot(x, x)), 1e-9)
    freqs, basis = _basis(rate, n, s.min_hz, s.max_hz)
    power = np.abs(basis @ x) ** 2
    peak = int(np.argmax(power))
    return ToneMeasure(float(freqs[peak]), min(float(power[peak]) / energy, 1.0), float(level))


class BeepDetector:
    """Fed successive frames with their start times; returns a `Beep` once one has ended."""

    def __init__(self, settings: BeepSettings | None = None, *, rate: int = 16_000) -> None:
        if rate not in (8_000, 16_000):
            raise ValueError(f"the beep detector takes 8 or 16 kHz audio, not {rate}")
        self.settings = settings or BeepSettings()
        self.rate = rate
        self._start: float | None = None
        self._end = 0.0
        self._freqs: list[float] = []

    def feed(self, samples: npt.NDArray[np.int16], at_s: float) -> Beep | None:
        """One frame starting at `at_s` seconds; the beep that ended before it, if any."""
        s = self.settings
        m = measure_tone(samples, self.rate, s)
        tonal = m.purity >= s.purity and m.level_dbfs >= s.min_level_dbfs
        if tonal and self._freqs and abs(m.hz - self._freqs[-1]) <= s.max_drift_hz:
            self._freqs.append(m.hz)
            self._end = at_s + len(samples) / self.rate
            return None
        beep = self._finish()
        if tonal:
            self._start, self._end = at_s, at_s + len(samples) / self.rate
            self._freqs = [m.hz]
        return beep

    def _finish(self) -> Beep | None:
        """The run so far, as a beep if its duration fits; the run is reset."""
        start, freqs = self._start, self._freqs
        self._start, self._freqs = None, []
        if start is None or not freqs:
            return None
        duration_ms = (self._end - start) * 1000.0
        if not self.settings.min_ms <= duration_ms + 1e-6 <= self.settings.max_ms:
            return None
        return Beep(started_s=start, ended_s=self._end, hz=round(sum(freqs) / len(freqs), 1))

    @property
    def in_tone(self) -> bool:
        """A tonal run is going on (a beep may be playing now)."""
        return self._start is not None
