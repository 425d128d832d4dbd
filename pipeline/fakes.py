"""In-package fakes of the engines, for tests of the call session on a virtual clock.

The fake caller speaks "utterances" of loud noise whose amplitude encodes which line it is
(`utterance_audio(k)`); `FakeStt` recognises the line from the amplitude and returns its
scripted text. `FakeTts` returns 100 ms of noise per word. `FakeVad` says speech when a
window is loud. Nothing here touches a model.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from config.schema import Settings
from media.frames import SAMPLE_RATE
from pipeline.engines import Engines
from pipeline.vad import Gate

AMPLITUDE_STEP = 1000


def utterance_audio(k: int, seconds: float, *, seed: int = 0) -> npt.NDArray[np.int16]:
    """Noise at amplitude (k+1)*1000 — the fake STT hears line k."""
    rng = np.random.default_rng(seed + k)
    n = int(seconds * SAMPLE_RATE)
    amp = AMPLITUDE_STEP * (k + 1)
    noise = rng.uniform(-1.0, 1.0, n)
    noise[: min(n, 8)] = 1.0  # make sure the peak is the nominal amplitude
    return np.asarray(noise * amp, dtype=np.int16)


class FakeStt:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.requests: list[tuple[bool, int]] = []
        self.contexts: list[str] = []
        self.gate: asyncio.Event | None = None

    async def transcribe(
        self,
        audio: npt.NDArray[np.int16],
        *,
        final: bool,
        prefix: str = "",
        context: str = "",
    ) -> str | None:
        self.requests.append((final, len(audio)))
        self.contexts.append(context)
        if self.gate is not None:
            await self.gate.wait()
        peak = int(np.max(np.abs(audio.astype(np.int32)))) if len(audio) else 0
        k = round(peak / AMPLITUDE_STEP) - 1
        if k < 0:
            return ""
        return self.lines[k] if k < len(self.lines) else ""


class FakeTts:
    WORD_S = 0.1

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def synthesize(self, text: str, voice: str = "") -> npt.NDArray[np.int16]:
        self.texts.append(text)
        n = int(len(text.split()) * self.WORD_S * SAMPLE_RATE)
        rng = np.random.default_rng(len(self.texts))
        return np.asarray(rng.uniform(-3000, 3000, n), dtype=np.int16)


class FakeVad:
    """Speech probability 1.0 for windows louder than `threshold` RMS (float scale)."""

    def __init__(self, threshold: float = 0.01) -> None:
        self.threshold = threshold

    def run(
        self,
        window: npt.NDArray[np.float32],
        h: npt.NDArray[np.float32],
        c: npt.NDArray[np.float32],
    ) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        rms = float(np.sqrt(np.mean(window[64:] ** 2)))
        return (1.0 if rms > self.threshold else 0.0), h, c


def energy_gate(_mode: int) -> Gate:
    def gate(pcm: bytes) -> bool:
        s = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
        return bool(np.sqrt(np.mean(s * s)) > 300)

    return gate


def fake_engines(lines: list[str], settings: Settings | None = None) -> Engines:
    return Engines(
        settings=settings or Settings(),
        stt=FakeStt(lines),
        tts=FakeTts(),
        vad=FakeVad(),
        vad_gate=energy_gate,
    )


class RecordedTurnModel:
    """The audio turn model's seam, replaying recorded verdicts: one probability per pause it
    is asked about, in order (the last one repeats). Records how much audio each ask carried."""

    def __init__(self, verdicts: list[float]) -> None:
        self._verdicts = list(verdicts)
        self.asked: list[int] = []

    async def probability(self, audio: npt.NDArray[np.int16]) -> float:
        self.asked.append(len(audio))
        return self._verdicts.pop(0) if len(self._verdicts) > 1 else self._verdicts[0]
