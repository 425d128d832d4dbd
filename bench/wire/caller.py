"""The bench's caller: speaks a scenario's lines into a `Leg`, 20 ms at a time, and records
what it sent and received (`CallTimeline`).

Every 20 ms (a `Pacer` on the injected clock) one frame goes out: the current line's next
frame, or silence between lines, as a phone would. A line starts once the agent finished its
previous reply (no agent speech received for `reply_gap_s` plus the line's pause), or, for a
barge-in line, `barge_in_ms` after the agent started that reply. A line the agent does not
answer within `reply_timeout_s` is followed by the next one anyway. After the last line the
caller waits for the agent's answer to finish (or the node to end the call) and stops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.scenario import SpokenLine
from bench.wire.leg import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, Leg
from bench.wire.measure import pcm_samples, speech_extent
from bench.wire.timeline import CallTimeline, Packet, SentLine
from media.clock import Clock
from media.pacer import Pacer

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
_SILENCE = bytes(FRAME_BYTES)


@dataclass(frozen=True)
class CallerOptions:
    reply_gap_s: float = 0.8
    """Silence after agent speech that ends its reply (longer than its pauses between clauses)."""
    reply_timeout_s: float = 10.0
    """No agent speech this long after a line (or the answer): go on without a reply."""
    max_call_s: float = 300.0
    """Stop (ended_by "timeout") after this long."""


class _Line:
    """A line cut into frames, with where its speech starts and ends."""

    def __init__(self, index: int, spoken: SpokenLine) -> None:
        self.frames = frame_pcm(spoken.samples) or [_SILENCE]
        self.index = index
        self.spoken = spoken
        extent = speech_extent(spoken.samples)
        # A line with no speech at all (silence WAV) counts as speech over its whole length.
        self.speech = extent if extent is not None else (0, max(1, len(spoken.samples)))
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
        lines: Sequence[SpokenLine],
        clock: Clock,
        *,
        call: int = 0,
        options: CallerOptions | None = None,
        expect_greeting: str = "",
    ) -> None:
        self._lines = [_Line(i, line) for i, line in enumerate(lines)]
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
        extent = speech_extent(pcm_samples(pcm))
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
        sent = 0
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
                nxt = queue[0] if queue else None
                if self._ready(now, nxt):
                    if nxt is None:
                        tl.ended_by = "caller"
                        break
                    current = queue.pop(0)
                    sent = 0
            frame = current.frames[sent] if current is not None else _SILENCE
            if current is not None:
                current.sent_at.append(now)
            await leg.send(frame)
            tl.frames_sent += 1
            if current is not None:
                sent += 1
                if sent == len(current.frames):
                    line = current.record()
                    tl.lines.append(line)
                    self._reset(line.speech_end)
                    current = None
        tl.late_frames = pacer.late_ticks
        tl.ended = self._clock.now()
        if current is not None and current.sent_at:
            tl.lines.append(current.record())
        return tl


def frame_pcm(samples: npt.NDArray[np.int16]) -> list[bytes]:
    """16 kHz samples as 20 ms frames of PCM (the last padded with silence)."""
    pad = (-len(samples)) % FRAME_SAMPLES
    if pad:
        samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    return [data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]
