"""A scripted fake node for the wire bench's tests: known delays, counted in caller frames.

`ScriptedNode` is sans-IO: fed each 20 ms caller frame as it arrives, it returns the frames it
sends back at that moment (at most one: it is paced by the caller's own frames). It greets
`greeting_after` frames after the first caller frame; `reply_after` frames after the caller's
speech ends (the first quiet frame after a loud one) it answers with `reply_frames` frames of
tone; caller speech starting while it speaks stops it after `stop_after` more frames.
Quiet frames go back as silence (`send_silence`) or not at all (like AudioSocket).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bench.scenario import SpokenLine
from bench.wire.leg import OnAudio
from media.clock import Clock

RATE = 16_000
FRAME = 320


def tone(
    seconds: float, rate: int = RATE, amplitude: int = 8000, hz: float = 440.0
) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(seconds: float, rate: int = RATE) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def line(
    speech_s: float = 0.6,
    lead_s: float = 0.2,
    tail_s: float = 0.2,
    *,
    text: str = "hello there",
    barge_in_ms: int | None = None,
    pause_ms: int = 0,
    expect: str = "",
) -> SpokenLine:
    """Silence, a tone (the caller's speech), silence: boundaries on 20 ms frames."""
    samples = np.concatenate([silence(lead_s), tone(speech_s, hz=300.0), silence(tail_s)])
    return SpokenLine(
        samples=samples, text=text, expect=expect, barge_in_ms=barge_in_ms, pause_ms=pause_ms
    )


def loud(pcm: bytes) -> bool:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return bool(len(x)) and float(np.sqrt(np.mean(x * x))) > 300.0


@dataclass
class ScriptedNode:
    greeting_after: int = 10
    greeting_frames: int = 25
    reply_after: int = 15
    reply_frames: int = 30
    stop_after: int = 4
    send_silence: bool = False
    samples_per_frame: int = FRAME
    frames_in: int = 0
    packets_out: int = 0
    log: list[str] = field(default_factory=list)
    _speaking_left: int = 0
    _start_in: int | None = None
    _start_frames: int = 0
    _caller_loud: bool = False
    _stopping: bool = False

    def on_frame(self, pcm: bytes) -> list[bytes]:
        """One caller frame in; the frames sent back right now."""
        self.frames_in += 1
        is_loud = loud(pcm)
        if self.frames_in == 1:
            self._schedule(self.greeting_after, self.greeting_frames)
        if is_loud and not self._caller_loud and self._speaking_left > 0 and not self._stopping:
            self._speaking_left = min(self._speaking_left, self.stop_after)
            self._stopping = True
            self.log.append(f"barge-in at frame {self.frames_in}")
        if not is_loud and self._caller_loud:
            self._schedule(self.reply_after, self.reply_frames)
        self._caller_loud = is_loud
        if self._start_in is not None:
            if self._start_in == 0:
                self._speaking_left = self._start_frames
                self._stopping = False
                self._start_in = None
            else:
                self._start_in -= 1
        if self._speaking_left > 0:
            self._speaking_left -= 1
            self.packets_out += 1
            return [self._tone()]
        if self.send_silence:
            self.packets_out += 1
            return [bytes(2 * self.samples_per_frame)]
        return []

    def _schedule(self, after: int, frames: int) -> None:
        """Start speaking on the frame `after` frames from this one (0: this one)."""
        self._start_in = after
        self._start_frames = frames

    def _tone(self) -> bytes:
        rate = self.samples_per_frame * 50
        return np.ascontiguousarray(tone(0.02, rate=rate), dtype="<i2").tobytes()


class FakeLeg:
    """A `Leg` whose far end is a `ScriptedNode`, delivering its frames at once."""

    def __init__(self, node: ScriptedNode, on_audio: OnAudio, clock: Clock) -> None:
        self.node = node
        self._on_audio = on_audio
        self._clock = clock
        self.call_id: str | None = "fake-call"
        self.closed = asyncio.Event()
        self.hung_up = 0

    async def send(self, pcm: bytes) -> None:
        for out in self.node.on_frame(pcm):
            self._on_audio(self._clock.now(), out)

    async def hangup(self) -> None:
        self.hung_up += 1
        self.closed.set()


def fake_opener(node: ScriptedNode, clock: Clock):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def open_leg(target: object, on_audio: OnAudio) -> AsyncIterator[FakeLeg]:
        leg = FakeLeg(node, on_audio, clock)
        try:
            yield leg
        finally:
            await leg.hangup()

    return open_leg


class FakeNodes:
    """An opener for many calls: each leg gets a fresh `ScriptedNode` and call id `fake-N`."""

    def __init__(self, make: Callable[[], ScriptedNode], clock: Clock) -> None:
        self._make = make
        self._clock = clock
        self.legs: list[FakeLeg] = []

    @asynccontextmanager
    async def __call__(self, target: object, on_audio: OnAudio) -> AsyncIterator[FakeLeg]:
        leg = FakeLeg(self._make(), on_audio, self._clock)
        leg.call_id = f"fake-{len(self.legs)}"
        self.legs.append(leg)
        try:
            yield leg
        finally:
            await leg.hangup()
