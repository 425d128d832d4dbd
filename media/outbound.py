"""A call's outbound audio waiting for its transport, shared by every transport.

`OutboundFrames` is the `AudioSink` the transports drain: `write` queues the agent's frames
and waits while `max_frames` (a latency choice) are queued; the transport takes them at its
own pace, and every frame taken counts as played (`played_until`). `clear()` drops the rest
at once (barge-in); `close()` also lets blocked writers return and discards later writes.

On the event loop a transport takes with `take()`, which wakes a waiting writer too. A taker
on another thread (SIP's bridge clock) uses `take_played()`, which touches only the deque
(one `popleft`, atomic) and the played count, and wakes a waiting writer through the loop
(`writer_waiting`, `wake_writers`): an `asyncio.Event` is not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque

from media.frames import AudioFrame
from media.transport import AudioSink


class OutboundFrames(AudioSink):
    def __init__(self, max_frames: int) -> None:
        self._frames: deque[AudioFrame] = deque()
        self._max_frames = max_frames
        self._space = asyncio.Event()
        self._space.set()
        self._waiting = False
        self._played = 0
        self._closed = False

    async def write(self, frame: AudioFrame) -> None:
        while len(self._frames) >= self._max_frames and not self._closed:
            self._space.clear()
            self._waiting = True
            try:
                await self._space.wait()
            finally:
                self._waiting = False
        if not self._closed:
            self._frames.append(frame)

    def clear(self) -> int:
        dropped = len(self._frames)
        self._frames.clear()
        self._space.set()
        return dropped

    @property
    def played_until(self) -> int:
        return self._played

    @property
    def buffered(self) -> int:
        return len(self._frames)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def writer_waiting(self) -> bool:
        """A writer waits for space (any thread may read it)."""
        return self._waiting

    def take(self) -> AudioFrame | None:
        """The oldest queued frame, now played, its space handed to a waiting writer; None
        when nothing is queued (on the event loop)."""
        frame = self.take_played()
        if frame is not None:
            self._space.set()
        return frame

    def take_played(self) -> AudioFrame | None:
        """As `take`, but no writer is woken (one taker thread at a time, any thread): a
        taker off the loop has the loop run `wake_writers` when `writer_waiting`."""
        frames = self._frames
        if not frames:
            return None
        try:
            frame = frames.popleft()
        except IndexError:  # cleared on the loop since the check
            return None
        self._played += 1
        return frame

    def wake_writers(self) -> None:
        """Let a writer waiting for space look again (on the event loop)."""
        self._space.set()

    def close(self) -> None:
        """Drop what is queued and let blocked writers return; later writes are discarded."""
        self._closed = True
        self.clear()
