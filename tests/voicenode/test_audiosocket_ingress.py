"""AudioSocket ingress on the real listener (real TCP, the protocol-exact client, a fake echoing
host with real admission): `audiosocket.allowed_sources` closes a connection from elsewhere at
accept, and the call UUID is only a routing key: call ids are the node's, and a second
connection with a live call's UUID is refused without touching that call."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from config.schema import AudioSocketSettings, Settings
from media.audiosocket import ErrorCode
from media.audiosocket_server import AudioSocketServer
from tests.support.audiosocket_client import AudioSocketClient
from tests.support.host import FakeHost, temp_store
from voicenode.audiosocket_listener import audiosocket_listener


@asynccontextmanager
async def serving(host: FakeHost, **audiosocket: Any) -> AsyncIterator[AudioSocketServer]:
    settings = Settings(audiosocket=AudioSocketSettings(port=0, **audiosocket))
    async with audiosocket_listener(settings, host) as server:  # type: ignore[arg-type]
        assert server is not None
        yield server


@pytest.fixture
async def host() -> AsyncIterator[FakeHost]:
    async with temp_store() as store:
        h = FakeHost(max_calls=3)
        await h.attach_store(store)
        yield h
        assert h.active_calls() == 0


def speech(seconds: float = 0.3) -> np.ndarray:  # type: ignore[type-arg]
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)


async def test_a_source_not_allowed_is_closed_at_accept(host: FakeHost) -> None:
    async with serving(host, allowed_sources=["192.0.2.0/24", "10.1.0.0/16"]) as server:
        client = await AudioSocketClient.connect(server.port)
        with contextlib.suppress(ConnectionError):  # the node may have reset it already
            await client.send_uuid(uuid.uuid4())
        async with asyncio.timeout(5):
            await client.closed.wait()
        await client.close()
        assert client.received.kinds == []  # not even an error kind: nothing was read
        assert server.refused_sources == 1
    assert host.started.empty()


async def test_an_allowed_source_is_served(host: FakeHost) -> None:
    async with serving(host, allowed_sources=["192.0.2.0/24", "127.0.0.0/8"]) as server:
        client = await AudioSocketClient.connect(server.port)
        await client.send_uuid(uuid.uuid4())
        async with asyncio.timeout(5):
            await host.started.get()
        await client.stream(speech(), realtime=False)
        await client.wait_for(lambda: len(client.received.audio_sizes) >= 5, limit_s=5)
        await client.send_hangup()
        async with asyncio.timeout(5):
            await host.finished.get()
            await host.wait_idle()
        await client.close()
        assert server.refused_sources == 0


async def test_a_reused_uuid_is_refused_while_live_and_never_takes_a_call_id(
    host: FakeHost,
) -> None:
    call_uuid = uuid.uuid4()
    async with serving(host) as server:
        first = await AudioSocketClient.connect(server.port)
        await first.send_uuid(call_uuid)
        async with asyncio.timeout(5):
            live = await host.started.get()

        twin = await AudioSocketClient.connect(server.port)
        await twin.send_uuid(call_uuid)
        async with asyncio.timeout(5):
            await twin.closed.wait()
        await twin.close()
        assert twin.received.errors == [bytes((ErrorCode.REFUSED,))]
        assert host.started.empty() and host.active_calls() == 1

        # the live call is untouched: its audio still echoes
        await first.stream(speech(), realtime=False)
        await first.wait_for(lambda: len(first.received.audio_sizes) >= 5, limit_s=5)
        await first.send_hangup()
        async with asyncio.timeout(5):
            assert await host.finished.get() == live.call_id
            await host.wait_idle()
        await first.close()

        # once it ended, the UUID routes again, to a call of its own
        again = await AudioSocketClient.connect(server.port)
        await again.send_uuid(call_uuid)
        async with asyncio.timeout(5):
            later = await host.started.get()
        assert later.call_id != live.call_id
        assert call_uuid.hex not in (live.call_id, later.call_id)
        await again.send_hangup()
        async with asyncio.timeout(5):
            await host.finished.get()
            await host.wait_idle()
        await again.close()
