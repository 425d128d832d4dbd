"""A call's inbound audio waiting for its consumer, shared by every transport.

`InboundFrames` is the `AudioSource` the transports fill: whole 20 ms frames (`add`) or
16 kHz samples of any length (`add_samples`, which keeps the remainder for the next call).
It holds at most `max_frames` (a latency choice): when the consumer falls behind, the
oldest frame is dropped and counted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt

from media.frames import FRAME_SAMPLES, AudioFrame
from media.transport import AudioSource


class InboundFrames(AudioSource):
    def __init__(self, max_frames: int) -> None:
        self._frames: deque[AudioFrame] = deque()
        self._max_frames = max_frames
        self._ready = asyncio.Event()
        self._ended = False
        self._pending = np.zeros(0, dtype=np.int16)
        self._seq = 0
        self.dropped = 0

    @property
    def ended(self) -> bool:
        return self._ended

    def add(self, pcm: bytes) -> int:
        """Queue one 20 ms frame (little-endian int16); return how many old frames were dropped.

        ValueError when `pcm` is not one frame long."""
        frame = AudioFrame(pcm, self._seq)
        dropped = 0
        if len(self._frames) >= self._max_frames:
            self._frames.popleft()
            dropped = 1
            self.dropped += 1
        self._frames.append(frame)
        self._seq += 1
        self._ready.set()
        return dropped

    def add_samples(self, samples: npt.NDArray[np.int16]) -> int:
        """Queue 16 kHz samples; whole frames become readable, the rest waits for more.
        Returns how many old frames were dropped."""
        pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        whole = len(pending) - len(pending) % FRAME_SAMPLES
        dropped = 0
        for start in range(0, whole, FRAME_SAMPLES):
            chunk = pending[start : start + FRAME_SAMPLES]
            dropped += self.add(AudioFrame.from_samples(chunk).pcm)
        self._pending = pending[whole:].copy()
        return dropped

    def end(self) -> None:
        """No more audio: the iterator ends once the queued frames are read."""
        self._ended = True
        self._ready.set()

    async def frames(self) -> AsyncIterator[AudioFrame]:
        while True:
            if self._frames:
                yield self._frames.popleft()
                continue
            if self._ended:
                return
            self._ready.clear()
            await self._ready.wait()
