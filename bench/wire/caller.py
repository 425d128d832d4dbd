"""The bench's caller: speaks a scenario's lines into a `Leg`, 20 ms at a time, and records
what it sent and received (`CallTimeline`).

Every 20 ms (a `Pacer` on the injected clock) one frame goes out: the current line's next
frame, or silence between lines, as a phone would. A line starts once the agent finished its
previous reply (no agent speech received for `reply_gap_s` plus the line's pause), or, for a
barge-in line, `barge_in_ms` after the agent started that reply. A line the agent does not
answer within `reply_timeout_s` is followed by the next one anyway. After the last line the
caller waits for the agent's answer to finish (or the node to end the call) and stops.

Light per call, like an Asterisk channel: the lines' frames and speech extents are rendered
once per run (`prepare_lines`; the runner passes them to every call), and each received packet
costs one peak check (a packet whose samples all stay under the speech threshold cannot hold
a speech window and is only recorded); the 5 ms energy windows run only on packets that may
hold speech. With a `TurnGate` (burst arrivals) a line waits until every live call of the step
is ready for it, so all calls speak it at once (within one 20 ms frame).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.scenario import SpokenLine
from bench.wire.arrivals import TurnGate
from bench.wire.leg import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, Leg
from bench.wire.measure import SPEECH_DBFS, pcm_samples, speech_extent
from bench.wire.timeline import CallTimeline, Packet, SentLine
from media.clock import Clock
from media.pacer import Pacer

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
_SILENCE = bytes(FRAME_BYTES)
_PEAK = 32768.0 * 10.0 ** (SPEECH_DBFS / 20.0)
"""A window's RMS reaches the speech threshold only if one of its samples does."""


@dataclass(frozen=True)
class CallerOptions:
    reply_gap_s: float = 0.8
    """Silence after agent speech that ends its reply (longer than its pauses between clauses)."""
    reply_timeout_s: float = 10.0
    """No agent speech this long after a line (or the answer): go on without a reply."""
    max_call_s: float = 300.0
    """Stop (ended_by "timeout") after this long."""


@dataclass(frozen=True)
class PreparedLine:
    """A line rendered for sending, once per run: its 20 ms frames and where its speech
    starts and ends (sample offsets)."""

    index: int
    spoken: SpokenLine
    frames: tuple[bytes, ...]
    speech: tuple[int, int]


def prepare_lines(lines: Sequence[SpokenLine | PreparedLine]) -> list[PreparedLine]:
    """The lines cut into frames (lines already prepared are kept as they are)."""
    out: list[PreparedLine] = []
    for i, line in enumerate(lines):
        if isinstance(line, PreparedLine):
            out.append(line)
            continue
        extent = speech_extent(line.samples)
        # A line with no speech at all (silence WAV) counts as speech over its whole length.
        speech = extent if extent is not None else (0, max(1, len(line.samples)))
        out.append(PreparedLine(i, line, tuple(frame_pcm(line.samples) or [_SILENCE]), speech))
    return out


class _Line:
    """One call's sending of a prepared line."""

    def __init__(self, prepared: PreparedLine) -> None:
        self.frames = prepared.frames
        self.index = prepared.index
        self.spoken = prepared.spoken
        self.speech = prepared.speech
        self.sent_at: list[float] = []

    def at_sample(self, k: int) -> float:
        """When sample `k` of the line was due: its frame's send time plus its offset."""
        frame = min(k // FRAME_SAMPLES, len(self.sent_at) - 1)
        return self.sent_at[frame] + (k - frame * FRAME_SAMPLES) / SAMPLE_RATE

    def record(self) -> SentLine:
        return SentLine(
            index=self.index,
            text=self.spoken.text,
            start=self.sent_at[0],
            speech_onset=self.at_sample(self.speech[0]),
            speech_end=self.at_sample(self.speech[1]),
            end=self.sent_at[-1] + FRAME_S,
            barge_in=self.spoken.barge_in_ms is not None,
            expect=self.spoken.expect,
        )


class Caller:
    """One call's caller. Give `on_audio` to the leg, then `await run(leg)`."""

    def __init__(
        self,
        lines: Sequence[SpokenLine | PreparedLine],
        clock: Clock,
        *,
        call: int = 0,
        options: CallerOptions | None = None,
        expect_greeting: str = "",
        gate: TurnGate | None = None,
    ) -> None:
        self._lines = [_Line(p) for p in prepare_lines(lines)]
        self._call = call
        self._gate = gate
        self._clock = clock
        self._opt = options or CallerOptions()
        self.timeline = CallTimeline(
            call=call, started=clock.now(), expect_greeting=expect_greeting
        )
        self._ref = -math.inf
        """Agent speech is looked for after this instant (the answer, then each line's end)."""
        self._speech: list[tuple[float, float]] = []
        """(start, end) of the speech in each received packet that has some, in arrival order."""
        self._cursor = 0
        """`_speech[_cursor:]` ends after `_ref`."""
        self._last_speech = -math.inf
        """End of the latest agent speech received."""

    # ---- receiving ----

    def on_audio(self, at: float, pcm: bytes) -> None:
        """The leg's `on_audio`: record the packet, follow the agent's speech."""
        self.timeline.packets.append(Packet(at, pcm))
        samples = pcm_samples(pcm)
        if len(samples) == 0 or (samples.max() < _PEAK and samples.min() > -_PEAK):
            return
        extent = speech_extent(samples)
        if extent is None:
            return
        start = at + extent[0] / SAMPLE_RATE
        end = at + extent[1] / SAMPLE_RATE
        self._last_speech = max(self._last_speech, end)
        self._speech.append((start, end))

    def _reset(self, ref: float) -> None:
        """Look for agent speech from `ref` on (it may lie in the past: a line's speech end is
        known once its trailing silence went out too)."""
        self._ref = ref

    @property
    def _onset(self) -> float | None:
        """Start of the first agent speech after `_ref`."""
        while self._cursor < len(self._speech) and self._speech[self._cursor][1] <= self._ref:
            self._cursor += 1
        if self._cursor == len(self._speech):
            return None
        return max(self._speech[self._cursor][0], self._ref)

    def _ready(self, now: float, line: _Line | None) -> bool:
        """Whether the next line (None: the end of the call) may start now."""
        onset = self._onset
        if line is not None and line.spoken.barge_in_ms is not None:
            if onset is not None:
                return now >= onset + line.spoken.barge_in_ms / 1000.0
            return now - self._ref >= self._opt.reply_timeout_s
        pause = line.spoken.pause_ms / 1000.0 if line is not None else 0.0
        if onset is None:
            return now - self._ref >= self._opt.reply_timeout_s
        return now - self._last_speech >= self._opt.reply_gap_s + pause

    # ---- sending ----

    def answered(self, at: float | None = None) -> None:
        """The leg is open; the greeting is looked for from now."""
        now = self._clock.now() if at is None else at
        self.timeline.answered = now
        self._reset(now)

    def _gated(self, now: float, line: _Line) -> bool:
        """Whether `line` must still wait for the other calls (burst arrivals; barge-in lines
        follow their own agent's reply and are not gated). A call waits for the others at
        most `reply_timeout_s`."""
        if self._gate is None or line.spoken.barge_in_ms is not None:
            return False
        first = self._gate.arrive(self._call, line.index, now)
        return not self._gate.is_open(line.index) and now - first < self._opt.reply_timeout_s

    def _start_line(self, now: float, queue: list[_Line]) -> tuple[bool, _Line | None]:
        """(the call is over, the line to start now if any) when no line is being sent."""
        nxt = queue[0] if queue else None
        if not self._ready(now, nxt):
            return False, None
        if nxt is None:
            self.timeline.ended_by = "caller"
            return True, None
        if self._gated(now, nxt):
            return False, None
        return False, queue.pop(0)

    async def run(self, leg: Leg) -> CallTimeline:
        """Speak every line, then wait for the last answer; returns the timeline (the leg is
        left open: the owner hangs up)."""
        tl = self.timeline
        if tl.answered is None:
            self.answered()
        assert tl.answered is not None
        pacer = Pacer(self._clock, FRAME_S)
        queue = list(self._lines)
        current: _Line | None = None
        try:
            while True:
                await pacer.wait_next()
                now = self._clock.now()
                if leg.closed.is_set():
                    tl.ended_by = "agent"
                    break
                if now - tl.answered >= self._opt.max_call_s:
                    tl.ended_by = "timeout"
                    break
                if current is None:
                    over, current = self._start_line(now, queue)
                    if over:
                        break
                current = await self._send(leg, now, current)
        finally:
            if self._gate is not None:
                self._gate.leave(self._call)
        tl.late_frames = pacer.late_ticks
        tl.ended = self._clock.now()
        if current is not None and current.sent_at:
            tl.lines.append(current.record())
        return tl

    async def _send(self, leg: Leg, now: float, current: _Line | None) -> _Line | None:
        """One frame out: the line's next, or silence; the line still being sent after it."""
        if current is None:
            await leg.send(_SILENCE)
            self.timeline.frames_sent += 1
            return None
        frame = current.frames[len(current.sent_at)]
        current.sent_at.append(now)
        await leg.send(frame)
        self.timeline.frames_sent += 1
        if len(current.sent_at) < len(current.frames):
            return current
        line = current.record()
        self.timeline.lines.append(line)
        self._reset(line.speech_end)
        return None


def frame_pcm(samples: npt.NDArray[np.int16]) -> list[bytes]:
    """16 kHz samples as 20 ms frames of PCM (the last padded with silence)."""
    pad = (-len(samples)) % FRAME_SAMPLES
    if pad:
        samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    return [data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]
