"""The AudioSocket leg over real TCP against a scripted fake AudioSocket node: the bench reports
the node's known delays within a frame; refusals and hang-ups; the zero-delay rate helpers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest

from bench.wire.audiosocket_leg import call_uuid, downsample_2x, open_leg, upsample_2x
from bench.wire.caller import Caller, CallerOptions
from bench.wire.leg import LegError, LegTarget, open_transport
from bench.wire.measure import greeting_s, line_latencies
from bench.wire.runner import run_call
from bench.wire.timeline import CallTimeline
from media.audiosocket import Audio, CallUuid, Error, Framer, Hangup
from media.clock import VirtualClock

from .wire_fakes import ScriptedNode, line, tone

F = 0.02
OPTIONS = CallerOptions(reply_gap_s=0.3, reply_timeout_s=2.0, max_call_s=60.0)


@dataclass
class FakeAudioSocketNode:
    """An AudioSocket server whose calls are answered by a `ScriptedNode` (8 kHz)."""

    script: Callable[[], ScriptedNode]
    refuse: bool = False
    uuids: list[uuid.UUID] = field(default_factory=list)
    nodes: list[ScriptedNode] = field(default_factory=list)
    rates: set[int] = field(default_factory=set)
    hangups: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        node = self.script()
        self.nodes.append(node)
        try:
            while data := await reader.read(65536):
                for msg in framer.feed(data):
                    match msg:
                        case CallUuid(uuid=u):
                            self.uuids.append(u)
                            if self.refuse:
                                writer.write(bytes(Error(b"\x11")))
                                await writer.drain()
                                return
                        case Audio(pcm=pcm, rate=rate):
                            self.rates.add(rate)
                            for out in node.on_frame(pcm):
                                writer.write(bytes(Audio(out, rate)))
                        case Hangup():
                            self.hangups += 1
                            return
                await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def fake_node(**kw: object) -> AsyncIterator[FakeAudioSocketNode]:
    node = FakeAudioSocketNode(**kw)  # type: ignore[arg-type]
    server = await asyncio.start_server(node.handle, "127.0.0.1", 0)
    node.port = server.sockets[0].getsockname()[1]
    try:
        yield node
    finally:
        server.close()
        await server.wait_closed()


async def settle(done: Callable[[], bool]) -> None:
    """Let the loop run (no time passes on the virtual clock) until `done()`: the socket
    round trips of this frame slot have completed."""
    for _ in range(100_000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the fake node and the leg did not catch up")


async def test_voice_to_voice_over_audiosocket_is_the_nodes_delay_within_a_frame() -> None:
    clock = VirtualClock(50.0)
    callers: list[Caller] = []

    def script() -> ScriptedNode:
        return ScriptedNode(greeting_after=9, reply_after=17, samples_per_frame=160)

    async with fake_node(script=script) as server:
        target = LegTarget(audiosocket_port=server.port, audiosocket_uuid_prefix="00000001")

        async def opener_call() -> CallTimeline:
            def opener(t: LegTarget, on_audio):  # type: ignore[no-untyped-def]
                return open_leg(t, on_audio, clock=clock)

            return await run_call(
                0, opener, target, [line(), line()], clock=clock, options=OPTIONS, callers=callers
            )

        task = asyncio.ensure_future(opener_call())
        await settle(lambda: bool(callers) and server.nodes != [])
        node, timeline = server.nodes[0], callers[0].timeline

        def caught_up() -> bool:
            sent_all = node.frames_in == timeline.frames_sent
            return task.done() or (sent_all and len(timeline.packets) == node.packets_out)

        for _ in range(5000):
            if task.done():
                break
            await clock.advance(F)
            await settle(caught_up)
        tl = await task
        await settle(lambda: server.hangups == 1)
    assert server.uuids and server.uuids[0].hex.startswith("00000001")
    assert tl.call_id == server.uuids[0].hex
    assert server.rates == {8000}
    assert tl.ended_by == "caller"
    assert len(tl.lines) == 2
    for t in line_latencies(tl):
        assert t.v2v_s is not None and abs(t.v2v_s - 17 * F) <= F, t
    g = greeting_s(tl)
    assert g is not None and abs(g - 9 * F) <= F
    # Every packet came back as 20 ms of 16 kHz audio.
    assert {len(p.pcm) for p in tl.packets} == {640}


async def test_a_refused_call_is_reported() -> None:
    clock = VirtualClock()
    async with fake_node(script=ScriptedNode, refuse=True) as server:
        target = LegTarget(audiosocket_port=server.port)
        got: list[bytes] = []
        async with open_leg(target, lambda at, pcm: got.append(pcm), clock=clock) as leg:
            await asyncio.wait_for(leg.closed.wait(), 5)
            assert leg.error == "refused"
        await settle(lambda: len(server.uuids) == 1)
        assert got == []

        opener = open_transport("audiosocket")
        task = asyncio.ensure_future(
            run_call(0, opener, target, [line()], clock=clock, options=OPTIONS)
        )
        await settle(lambda: len(server.uuids) == 2)
        for _ in range(1000):
            if task.done():
                break
            await clock.advance(F)
        tl = await task
    assert tl.ended_by == "refused"
    assert tl.error == "refused"


async def test_no_listener_is_a_leg_error() -> None:
    async with fake_node(script=ScriptedNode) as server:
        port = server.port
    with pytest.raises(LegError, match="cannot connect"):
        async with open_leg(LegTarget(audiosocket_port=port), lambda at, pcm: None):
            pass


async def test_16_khz_audio_goes_as_is() -> None:
    clock = VirtualClock()
    async with fake_node(script=lambda: ScriptedNode(greeting_after=0)) as server:
        target = LegTarget(audiosocket_port=server.port, audiosocket_rate=16000)
        got: list[bytes] = []
        async with open_leg(target, lambda at, pcm: got.append(pcm), clock=clock) as leg:
            frame = np.ascontiguousarray(tone(0.02), dtype="<i2").tobytes()
            await leg.send(frame)
            await settle(lambda: len(got) == 1)
        await settle(lambda: server.hangups == 1)
    assert server.rates == {16000}
    assert len(got[0]) == 640


def test_call_uuid_keeps_the_prefix() -> None:
    u = call_uuid("00000001")
    assert u.hex.startswith("00000001") and len(u.hex) == 32
    assert call_uuid().hex != call_uuid().hex


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_rate_helpers_keep_timing_and_level() -> None:
    wide = tone(0.1, hz=300.0)
    narrow = downsample_2x(wide)
    assert len(narrow) == 800
    assert rms(narrow) == pytest.approx(rms(wide), rel=0.01)
    # At most half a 16 kHz sample late (the pair mean): 471 at 300 Hz and full scale 8000.
    assert np.abs(narrow.astype(int) - wide[0::2].astype(int)).max() <= 475
    back = upsample_2x(narrow)
    assert len(back) == 1600
    assert rms(back) == pytest.approx(rms(wide), rel=0.01)
    # Lined up with the original within a 16 kHz sample: no resampler delay.
    lag = int(np.argmax(np.correlate(back.astype(float), wide.astype(float), "full"))) - 1599
    assert lag in (0, 1)
    assert len(upsample_2x(np.zeros(0, dtype=np.int16))) == 0
