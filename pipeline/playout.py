"""Playout: agent speech to the transport as paced 20 ms frames, and what the caller heard.

Segments (a clause's text and its audio) are queued by the response; one owned task writes
their frames on an absolute 20 ms schedule, a couple of frames ahead of real time at most.
`heard_text()` maps the transport's `played_until` back onto the text: whole clauses that were
played plus the share of the current clause's words matching the share of its audio played.
`clear()` (barge-in) drops everything unsent in one step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from media.clock import Clock
from media.frames import FRAME_SAMPLES, AudioFrame
from media.transport import AudioSink
from pipeline.echo import EchoGuard

log = logging.getLogger(__name__)
FRAME_S = 0.020
LATE_FRAMES = Counter(
    "voicenode_playout_frames_late_total",
    "Agent frames whose 20 ms slot had passed by more than 3 frames (the loop stalled)",
)


@dataclass
class _Segment:
    text: str
    frames: list[bytes]
    first_frame: int = -1  # playout frame counter value of its first frame, once written
    written: int = 0


class Playout:
    def __init__(
        self,
        sink: AudioSink,
        clock: Clock,
        *,
        lead_frames: int = 2,
        on_first_frame: Callable[[], None] | None = None,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._lead = lead_frames
        self.on_first_frame = on_first_frame
        self._pending: list[_Segment] = []
        self._response: list[_Segment] = []  # segments of the current response, in order
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._written = 0  # frames handed to the sink since the sink's last clear
        self._base = 0  # sink.played_until at the sink's last clear
        self._seq = 0
        self._next_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.late_frames = 0
        self._first_sent = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.echo = EchoGuard()  # what went out, each frame at its slot (`pipeline.echo`)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="playout")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if (t := asyncio.current_task()) is not None and t.cancelling():
                    raise
            self._task = None

    def begin_response(self) -> None:
        """Start tracking a new agent response (heard text restarts from empty)."""
        self._response = []
        self._first_sent = False

    def enqueue(self, text: str, samples: npt.NDArray[np.int16]) -> None:
        pad = (-len(samples)) % FRAME_SAMPLES
        if pad:
            samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
        data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        step = FRAME_SAMPLES * 2
        seg = _Segment(text, [data[i : i + step] for i in range(0, len(data), step)])
        self._pending.append(seg)
        self._response.append(seg)
        self._idle.clear()
        self._wake.set()

    @property
    def speaking(self) -> bool:
        """Audio is queued or still on its way to the caller."""
        return not self._idle.is_set() or self._sink.played_until < self._base + self._written

    def _played(self) -> int:
        return max(0, self._sink.played_until - self._base)

    def heard_text(self) -> str:
        played = self._played()
        words: list[str] = []
        for seg in self._response:
            if seg.first_frame < 0:
                break
            n = min(len(seg.frames), max(0, played - seg.first_frame))
            if n >= len(seg.frames):
                words.extend(seg.text.split())
                continue
            if n > 0:
                seg_words = seg.text.split()
                words.extend(seg_words[: int(len(seg_words) * n / len(seg.frames))])
            break
        return " ".join(words)

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def pause(self) -> None:
        """Stop sending (the caller may be interrupting); queued audio is kept."""
        self._resumed.clear()

    def resume(self) -> None:
        if not self._resumed.is_set():
            self._resumed.set()
            self._next_at = None

    def clear(self) -> str:
        """Barge-in: drop everything unsent; return the text the caller heard."""
        heard = self.heard_text()
        self._pending.clear()
        self._sink.clear()
        self._base = self._sink.played_until
        self._written = 0
        self._response = []
        self._next_at = None
        self._idle.set()
        self.resume()
        return heard

    async def drain(self) -> None:
        """Wait until everything queued has been sent to the caller."""
        await self._idle.wait()
        while self._sink.played_until < self._base + self._written:
            await self._clock.sleep_until(self._clock.now() + FRAME_S)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._next_at = None
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._resumed.is_set():
                await self._resumed.wait()
                continue
            seg = self._pending[0]
            if seg.written >= len(seg.frames):
                self._pending.pop(0)
                continue
            now = self._clock.now()
            if self._next_at is None:
                self._next_at = now
            elif now - self._next_at > 3 * FRAME_S:
                self.late_frames += 1
                LATE_FRAMES.inc()
                self._next_at = now  # fell behind (a stalled loop): resume, do not burst
            if self._next_at > now + self._lead * FRAME_S:
                await self._clock.sleep_until(self._next_at - self._lead * FRAME_S)
                continue
            if seg.first_frame < 0:
                seg.first_frame = self._written
            frame = AudioFrame(seg.frames[seg.written], self._seq)
            seg.written += 1
            self._seq += 1
            await self._sink.write(frame)
            self.echo.played(frame.samples, self._next_at)
            self._written += 1
            self._next_at += FRAME_S
            if not self._first_sent:
                self._first_sent = True
                if self.on_first_frame is not None:
                    self.on_first_frame()
