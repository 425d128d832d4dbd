"""The real node (embedded models, the demo receptionist) for the bench's caller legs: HTTP,
WebRTC and SIP on free 127.0.0.1 ports, in this process; and a caller that paces audio into a
leg and records what comes back."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from bench.wire.caller import frame_pcm
from bench.wire.leg import FRAME_BYTES, Leg, LegTarget
from media.clock import MonotonicClock
from media.pacer import Pacer
from pipeline.engines import Engines
from sip.ua import UserAgent
from tests.support.harness import ADMIN_KEY, real_node_settings, serve_app
from tests.support.ports import free_port
from voicenode.node import Node, open_node

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True)
class LegNode:
    node: Node
    target: LegTarget

    @property
    def engines(self) -> Engines:
        assert self.node.engines is not None
        return self.node.engines


@asynccontextmanager
async def serve_leg_node(data_dir: Path, engines: Engines) -> AsyncIterator[LegNode]:
    """The node with the control API and its SIP listener; `target` reaches both."""
    s = real_node_settings(data_dir)
    settings = msgspec.structs.replace(
        s,
        sip=msgspec.structs.replace(
            s.sip, enabled=True, transports=["udp"], rtp_port=free_port(), rtp_port_range=100
        ),
    )
    async with open_node(settings, engines) as node:
        await node.wait_ready()
        ua = next(x for x in node.listeners if isinstance(x, UserAgent))
        async with serve_app(node, settings) as url:
            target = LegTarget(
                base_url=url,
                api_key=ADMIN_KEY,
                sip_host="127.0.0.1",
                sip_port=ua.port,
                connect_timeout_s=15,
            )
            yield LegNode(node=node, target=target)


class Heard:
    """What a leg's `on_audio` was given: (arrival time, 16 kHz PCM) per packet."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes]] = []
        self._new = asyncio.Event()

    def on_audio(self, at: float, pcm: bytes) -> None:
        self.packets.append((at, pcm))
        self._new.set()

    def audio(self, since: float = 0.0) -> Samples:
        chunks = [pcm for at, pcm in self.packets if at >= since]
        return np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16)

    def speech_onset(self, since: float = 0.0) -> float | None:
        """Arrival time of the first packet after `since` with speech in it."""
        return next((at for at, pcm in self.packets if at >= since and loud(pcm)), None)

    def spoke_and_stopped(self, since: float, quiet_s: float = 1.0) -> bool:
        """Whether speech arrived after `since` and then `quiet_s` of packets without any."""
        onset = self.speech_onset(since)
        if onset is None:
            return False
        last_loud = max(at for at, pcm in self.packets if at >= onset and loud(pcm))
        return self.packets[-1][0] - last_loud >= quiet_s

    async def wait(self, done: Callable[[], bool], what: str, limit_s: float) -> None:
        """Wait (on arriving packets) until `done()`; fail naming `what` after `limit_s`."""
        try:
            async with asyncio.timeout(limit_s):
                while not done():
                    self._new.clear()
                    await self._new.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} within {limit_s} s") from None


def loud(pcm: bytes, level: float = 500.0) -> bool:
    return rms(np.frombuffer(pcm, dtype="<i2")) >= level


def rms(samples: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


class Mouth:
    """The caller's side of the pacing: one frame every 20 ms into the leg, a queued line's
    frames or silence. `said` is set when the queue runs dry; `last_sent` is when the last
    frame of a line went out."""

    def __init__(self) -> None:
        self._queue: deque[bytes] = deque()
        self.said = asyncio.Event()
        self.said.set()
        self.last_sent = 0.0
        self.sent = 0

    def say(self, samples: Samples) -> None:
        self._queue.extend(frame_pcm(samples))
        self.said.clear()

    async def run(self, leg: Leg) -> None:
        silence = bytes(FRAME_BYTES)
        async for _ in Pacer(MonotonicClock()):
            if self._queue:
                await leg.send(self._queue.popleft())
                self.last_sent = time.monotonic()
                if not self._queue:
                    self.said.set()
            else:
                await leg.send(silence)
            self.sent += 1


@asynccontextmanager
async def speaking(leg: Leg) -> AsyncIterator[Mouth]:
    """A `Mouth` pacing frames into `leg` while the block runs."""
    mouth = Mouth()
    task = asyncio.get_running_loop().create_task(mouth.run(leg))
    try:
        yield mouth
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
