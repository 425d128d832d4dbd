"""A virtual transport and call: audio and signalling in memory, for `voicenode simulate` and tests.

The far end (a script, a test) feeds inbound frames with `send()` and reads what the agent
said from `sink.frames`. Frames written to the sink count as played at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from media.call import Call, CallInfo, CallSignal, Dtmf, RemoteHangup
from media.clock import Clock
from media.frames import AudioFrame
from media.transport import AudioSink, AudioSource, Transport


class VirtualSink(AudioSink):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.frames: list[AudioFrame] = []
        self.times: list[float] = []
        self.cleared = 0

    async def write(self, frame: AudioFrame) -> None:
        self.frames.append(frame)
        self.times.append(self._clock.now())

    def clear(self) -> int:
        self.cleared += 1
        return 0

    @property
    def played_until(self) -> int:
        return len(self.frames)


class VirtualSource(AudioSource):
    def __init__(self, maxsize: int = 50) -> None:
        self._queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue(maxsize)

    async def send(self, frame: AudioFrame) -> None:
        await self._queue.put(frame)

    def close(self) -> None:
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            pass

    async def frames(self) -> AsyncIterator[AudioFrame]:
        while (frame := await self._queue.get()) is not None:
            yield frame


class VirtualTransport(Transport):
    def __init__(self, clock: Clock) -> None:
        self.source: VirtualSource = VirtualSource()
        self.sink: VirtualSink = VirtualSink(clock)

    async def close(self) -> None:
        self.source.close()


class VirtualCall(Call):
    """Call control that records what the agent did; the far end can press keys or hang up."""

    def __init__(self, info: CallInfo) -> None:
        self.info = info
        self._signals: asyncio.Queue[CallSignal] = asyncio.Queue()
        self.hung_up: str | None = None
        self.transferred_to: str | None = None
        self.dtmf_sent: list[str] = []
        self.ended = asyncio.Event()

    async def hangup(self, reason: str = "normal") -> None:
        if self.hung_up is None:
            self.hung_up = reason
            self.ended.set()

    async def transfer(self, target: str) -> None:
        self.transferred_to = target
        self.ended.set()

    async def send_dtmf(self, digits: str) -> None:
        self.dtmf_sent.append(digits)

    async def next_signal(self) -> CallSignal:
        return await self._signals.get()

    def press(self, digits: str) -> None:
        for d in digits:
            self._signals.put_nowait(Dtmf(d))

    def remote_hangup(self) -> None:
        self._signals.put_nowait(RemoteHangup("far end"))
