"""Recording a call at the transport seam: what the caller sent and what the agent played.

`RecordingTransport` wraps a call's `Transport`: each inbound frame goes to the recorder's
caller channel as the session reads it, each frame the session writes to the sink to the agent
channel, at the time it is due to play (the sink's clock time plus the frames already buffered
ahead of it). A barge-in's `clear` takes back the frames it dropped, if the recorder has not
written them yet (its `lag_frames` should cover the sink's buffer). `pause`/`resume` mute both
channels from the clock's now (a sensitive moment: a card number said or keyed in). Each pause
has a reason (`api`: the control API; `agent`: a flow's `recording` action; `sensitive`: a
flow slot marked sensitive being collected), held apart: the recording is muted while any
reason holds, so the API's resume does not unmute a card number being keyed in.

Times come from one clock for both channels, placed by `FramePlacer`: a stream's consecutive
frames land in consecutive 20 ms slots whatever the jitter of their arrival, and a stream that
stopped (the agent done speaking, a gap in the caller's audio) starts again at its arrival time.

`close` closes the wrapped transport, then the recording; `recorder.close()` (idempotent) gives
its `RecordingInfo`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Literal

from media.clock import Clock
from media.frames import FRAME_MS, AudioFrame
from media.recording_file import CallRecorder
from media.transport import AudioSink, AudioSource, Transport

__all__ = ["FramePlacer", "PauseReason", "RecordingTransport"]

PauseReason = Literal["api", "agent", "sensitive"]

FRAME_S: Final = FRAME_MS / 1000
RESTART_AFTER_S: Final = 0.06
"""A frame this much later than its stream's next slot starts the stream again at its time."""


class FramePlacer:
    """A stream's media times from its frames' arrival times (see the module docstring)."""

    def __init__(self, restart_after_s: float = RESTART_AFTER_S) -> None:
        self._restart_after_s = restart_after_s
        self._last: float | None = None

    @property
    def last(self) -> float | None:
        return self._last

    def place(self, now: float) -> float:
        last = self._last
        due = None if last is None else last + FRAME_S
        at = now if due is None or now > due + self._restart_after_s else due
        self._last = at
        return at

    def restart(self) -> None:
        self._last = None


class _RecordedSource(AudioSource):
    def __init__(self, inner: AudioSource, recorder: CallRecorder, clock: Clock) -> None:
        self._inner = inner
        self._recorder = recorder
        self._clock = clock
        self._placer = FramePlacer()

    async def frames(self) -> AsyncIterator[AudioFrame]:
        async for frame in self._inner.frames():
            self._recorder.feed("caller", self._placer.place(self._clock.now()), frame.pcm)
            yield frame


class _RecordedSink(AudioSink):
    def __init__(self, inner: AudioSink, recorder: CallRecorder, clock: Clock) -> None:
        self._inner = inner
        self._recorder = recorder
        self._clock = clock
        self._placer = FramePlacer()

    async def write(self, frame: AudioFrame) -> None:
        await self._inner.write(frame)
        ahead = max(self._inner.buffered - 1, 0)  # frames queued before this one
        at = self._placer.place(self._clock.now() + ahead * FRAME_S)
        self._recorder.feed("agent", at, frame.pcm)

    def clear(self) -> int:
        dropped = self._inner.clear()
        last = self._placer.last
        if dropped and last is not None:
            self._recorder.retract("agent", last - (dropped - 1) * FRAME_S)
        self._placer.restart()
        return dropped

    @property
    def played_until(self) -> int:
        return self._inner.played_until

    @property
    def buffered(self) -> int:
        return self._inner.buffered


class RecordingTransport(Transport):
    """A call's transport whose audio both ways is recorded (see the module docstring)."""

    def __init__(self, inner: Transport, recorder: CallRecorder, clock: Clock) -> None:
        self.inner = inner
        self.recorder = recorder
        self._clock = clock
        self.source = _RecordedSource(inner.source, recorder, clock)
        self.sink = _RecordedSink(inner.sink, recorder, clock)
        self._held: set[PauseReason] = set()

    @property
    def paused_for(self) -> frozenset[PauseReason]:
        """The reasons the recording is muted for now (empty: recording)."""
        return frozenset(self._held)

    def pause(self, reason: PauseReason = "api") -> bool:
        """Mute the recording from now on for `reason`; False if that reason already held."""
        if reason in self._held:
            return False
        if not self._held:
            self.recorder.pause(self._clock.now())
        self._held.add(reason)
        return True

    def resume(self, reason: PauseReason = "api") -> bool:
        """Drop `reason`'s pause; the recording goes on from now once no reason holds. False
        if `reason` held no pause."""
        if reason not in self._held:
            return False
        self._held.discard(reason)
        if not self._held:
            self.recorder.resume(self._clock.now())
        return True

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            self.recorder.close()
