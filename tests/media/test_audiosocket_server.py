"""The AudioSocket server against a protocol-exact client on loopback: routing, audio both ways
(paced on a virtual clock), barge-in, DTMF, hangup from either side, refusals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from media.audiosocket import ErrorCode
from media.audiosocket_call import AudioSocketCall, AudioSocketOptions
from media.audiosocket_server import (
    AudioSocketServer,
    CallRefused,
    CallRoute,
    serve_audiosocket,
)
from media.call import CallControlError, CallInfo, Direction, Dtmf, RemoteHangup
from media.clock import VirtualClock
from media.frames import AudioFrame, frames_from_samples
from tests.support.audiosocket_client import SLIN, AudioSocketClient

KNOWN = uuid.UUID("00000001-0000-4000-8000-000000000001")
FULL = uuid.UUID("00000002-0000-4000-8000-000000000002")


def tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:  # type: ignore[type-arg]
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


@dataclass
class FarEnd:
    transfers: list[str] = field(default_factory=list)
    dtmf: list[str] = field(default_factory=list)
    hangups: int = 0
    during_hangup: Callable[[], Awaitable[None]] | None = None

    async def transfer(self, target: str) -> None:
        self.transfers.append(target)

    async def send_dtmf(self, digits: str) -> None:
        self.dtmf.append(digits)

    async def hangup(self) -> None:
        self.hangups += 1
        if self.during_hangup is not None:
            await self.during_hangup()


class FakeRouter:
    """Routes KNOWN (and any extra UUIDs); FULL is over capacity. Started calls are queued."""

    def __init__(self) -> None:
        self.calls: asyncio.Queue[AudioSocketCall] = asyncio.Queue()
        self.all: list[AudioSocketCall] = []
        self.routed: list[uuid.UUID] = []
        self.known = {KNOWN}
        self.far_end: FarEnd | None = FarEnd()

    async def route(self, call_uuid: uuid.UUID) -> CallRoute:
        self.routed.append(call_uuid)
        if call_uuid == FULL:
            raise CallRefused("max_calls")
        if call_uuid not in self.known:
            raise CallRefused("unknown", ErrorCode.UNKNOWN_CALL)
        info = CallInfo(
            call_id=call_uuid.hex, tenant_id="t1", direction=Direction.INBOUND,
            transport="audiosocket",
        )  # fmt: skip
        return CallRoute(info=info, agent="a", control=self.far_end)

    def start(self, call: AudioSocketCall, route: CallRoute) -> None:
        self.all.append(call)
        self.calls.put_nowait(call)


@dataclass
class Env:
    server: AudioSocketServer
    router: FakeRouter
    clock: VirtualClock

    async def call(self, call_uuid: uuid.UUID = KNOWN) -> tuple[AudioSocketClient, AudioSocketCall]:
        client = await AudioSocketClient.connect(self.server.port)
        await client.send_uuid(call_uuid)
        async with asyncio.timeout(5):
            call = await self.router.calls.get()
        return client, call


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    router = FakeRouter()
    clock = VirtualClock()
    async with serve_audiosocket(router, "127.0.0.1", 0, clock=clock) as server:
        yield Env(server, router, clock)
    assert server.connections == 0
    for call in router.all:
        assert call.closed


async def read_frames(call: AudioSocketCall, n: int) -> list[AudioFrame]:
    out: list[AudioFrame] = []
    async with asyncio.timeout(5):
        async for frame in call.transport.source.frames():
            out.append(frame)
            if len(out) == n:
                break
    return out


async def test_caller_audio_at_8k_becomes_16k_frames(env: Env) -> None:
    client, call = await env.call()
    assert call.info.call_id == KNOWN.hex
    await client.stream(tone(8000, 1.0), realtime=False)
    frames = await read_frames(call, 48)  # the resampler holds back a few ms
    assert all(f.seq == i for i, f in enumerate(frames))
    samples = np.concatenate([f.samples for f in frames[5:]]).astype(np.float64)
    assert 5000 < np.sqrt(np.mean(samples**2)) < 6500  # the tone's RMS (8000 / sqrt 2)
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - 440) < 5
    await client.close()


async def test_agent_audio_is_paced_at_20ms_in_the_callers_format(env: Env) -> None:
    client, call = await env.call()
    await client.send_audio(bytes(320))  # 20 ms of 8 kHz slin: agent audio goes back as 0x10
    sink = call.transport.sink
    for frame in frames_from_samples(tone(16000, 0.2)):  # 10 frames
        await sink.write(frame)
    assert sink.played_until == 0
    await env.clock.advance(0)
    # Tick 0 goes at once: the first frame and (the resampler holds back a few samples) a
    # second one are converted to send exactly 160 samples.
    await client.wait_for(lambda: len(client.received.audio_sizes) == 1)
    for tick in range(1, 5):
        await env.clock.advance(0.02)
        await client.wait_for(lambda t=tick: len(client.received.audio_sizes) == t + 1)
    assert 5 <= sink.played_until <= 6 and sink.buffered == 10 - sink.played_until
    assert set(client.received.audio_sizes) == {320}  # exactly 20 ms at 8 kHz each
    assert set(client.received.kinds) == {SLIN}
    # Barge-in: everything not yet sent is dropped at once; nothing more goes out.
    dropped = sink.clear()
    assert dropped == 10 - sink.played_until and sink.buffered == 0
    played = sink.played_until
    await env.clock.advance(0.2)
    assert sink.played_until == played
    await client.send_dtmf("1")  # a round trip: whatever the server sent is in by now
    assert await call.next_signal() == Dtmf("1")
    assert len(client.received.audio_sizes) == 5
    await client.close()


async def test_a_16k_caller_gets_16k_audio_back(env: Env) -> None:
    client, call = await env.call()
    await client.send_audio(bytes(640), kind=0x12)
    await read_frames(call, 1)
    assert call.rate == 16000
    await call.transport.sink.write(AudioFrame.from_samples(tone(16000, 0.02)))
    await call.transport.sink.write(AudioFrame.from_samples(tone(16000, 0.02)))
    await env.clock.advance(0)
    await client.wait_for(lambda: client.received.audio_sizes)
    assert client.received.kinds == [0x12] and client.received.audio_sizes == [640]
    await client.close()


async def test_dtmf_and_caller_hangup(env: Env) -> None:
    client, call = await env.call()
    for d in "12#":
        await client.send_dtmf(d)
    assert [await call.next_signal() for _ in range(3)] == [Dtmf("1"), Dtmf("2"), Dtmf("#")]
    await client.send_hangup()
    assert await call.next_signal() == RemoteHangup("hangup")
    assert [f async for f in call.transport.source.frames()] == []  # inbound ended
    async with asyncio.timeout(1):
        await call.wait_closed()
        await client.closed.wait()
    await client.close()


async def test_agent_hangup_sends_the_hangup_kind_and_closes(env: Env) -> None:
    client, call = await env.call()
    for frame in frames_from_samples(tone(16000, 0.2)):
        await call.transport.sink.write(frame)
    await env.clock.advance(0.02)
    assert env.router.far_end is not None
    env.router.far_end.during_hangup = lambda: env.clock.advance(0.1)  # the sender keeps ticking
    await call.hangup("completed")
    async with asyncio.timeout(1):
        await client.closed.wait()
    assert client.received.hangup and client.received.kinds[-1] == 0x00  # nothing after it
    assert client.received.kinds.count(0x10) == 2 and env.router.far_end.hangups == 1
    await call.close("completed")  # idempotent
    await client.close()


async def test_transfer_and_dtmf_out_go_through_the_far_end(env: Env) -> None:
    client, call = await env.call()
    await call.transfer("sip:frontdesk@clinic.example")
    await call.send_dtmf("42")
    far_end = env.router.far_end
    assert far_end is not None
    assert far_end.transfers == ["sip:frontdesk@clinic.example"] and far_end.dtmf == ["42"]
    await client.close()


async def test_without_a_far_end_transfer_is_a_call_control_error(env: Env) -> None:
    env.router.far_end = None
    client, call = await env.call()
    with pytest.raises(CallControlError, match="AMI"):
        await call.transfer("100")
    with pytest.raises(CallControlError, match="AMI"):
        await call.send_dtmf("1")
    await call.hangup("completed")  # the hangup kind alone
    async with asyncio.timeout(1):
        await client.closed.wait()
    assert client.received.hangup
    await client.close()


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (uuid.UUID(int=7).bytes, ErrorCode.UNKNOWN_CALL),
        (FULL.bytes, ErrorCode.REFUSED),
    ],
    ids=["unknown", "refused"],
)
async def test_unknown_or_refused_uuid_gets_the_error_kind(
    env: Env, first: bytes, code: int
) -> None:
    client = await AudioSocketClient.connect(env.server.port)
    await client.send(b"\x01\x00\x10" + first)
    async with asyncio.timeout(1):
        await client.closed.wait()
    assert client.received.errors == [bytes((code,))]
    assert env.router.all == []
    await client.close()


async def test_audio_before_the_uuid_is_a_protocol_error(env: Env) -> None:
    client = await AudioSocketClient.connect(env.server.port)
    await client.send_audio(bytes(320))
    async with asyncio.timeout(1):
        await client.closed.wait()
    assert client.received.errors == [bytes((ErrorCode.PROTOCOL,))]
    assert env.router.routed == []
    await client.close()


async def test_no_uuid_in_time_closes_the_connection() -> None:
    router = FakeRouter()
    options = AudioSocketOptions(uuid_timeout_s=0.05)
    async with serve_audiosocket(router, "127.0.0.1", 0, options=options) as server:
        client = await AudioSocketClient.connect(server.port)
        async with asyncio.timeout(1):
            await client.closed.wait()
        assert client.received.errors == [bytes((ErrorCode.TIMEOUT,))]
        await client.close()


async def test_closing_the_server_closes_live_calls(env: Env) -> None:
    c1, call1 = await env.call()
    c2, call2 = await env.call()
    assert env.server.connections == 2
    await env.server.close()
    assert call1.closed and call2.closed and env.server.connections == 0
    async with asyncio.timeout(1):
        await c1.closed.wait()
        await c2.closed.wait()
    await c1.close()
    await c2.close()
