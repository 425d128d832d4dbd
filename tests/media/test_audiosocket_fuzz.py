"""Fuzzing the AudioSocket server over real TCP: whatever a connection sends, cut however, and
however it ends, the server closes it within 1 s, leaks no task or socket, and a healthy call
on the same server carries on."""

from __future__ import annotations

import asyncio
import socket
import struct
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.audiosocket_call import AudioSocketOptions
from media.audiosocket_server import serve_audiosocket
from media.call import Dtmf
from tests.media.test_audiosocket_server import KNOWN, FakeRouter
from tests.support.audiosocket_client import AudioSocketClient, message

OTHER = uuid.UUID("00000001-0000-4000-8000-0000000000ff")


def _call_traffic() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=400).map(lambda b: message(0x10, b[: len(b) // 2 * 2])),
        st.sampled_from("0123456789*#").map(lambda d: message(0x03, d.encode())),
    )


def _valid() -> st.SearchStrategy[bytes]:
    return st.one_of(_call_traffic(), st.binary(max_size=3).map(lambda b: message(0xFF, b)))


def _garbage() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(min_size=1, max_size=64),  # anything at all
        st.integers(0, 255).map(lambda k: struct.pack(">BH", k, 0)),  # any kind, empty
        st.integers(0, 0xFFFF).map(lambda n: struct.pack(">BH", 0x10, n)),  # a length, no body
        st.just(message(0x10, b"\x01")),  # odd audio
        st.just(message(0x01, bytes(16))),  # a second UUID
        st.just(message(0x03, b"x")),  # not a digit
    )


_START = st.sampled_from(["known", "unknown", "audio-first", "nothing", "short-uuid"])
_END = st.sampled_from(["hangup", "close", "half-close", "reset"])


def _prefix(start: str) -> bytes:
    match start:
        case "known":
            return message(0x01, OTHER.bytes)
        case "unknown":
            return message(0x01, uuid.UUID(int=99).bytes)
        case "audio-first":
            return message(0x10, bytes(320))
        case "short-uuid":
            return message(0x01, bytes(15))
    return b""


async def _scenario(start: str, body: list[bytes], end: str, cuts: list[int]) -> None:
    router = FakeRouter()
    router.known.add(OTHER)
    options = AudioSocketOptions(uuid_timeout_s=0.5)
    async with serve_audiosocket(router, "127.0.0.1", 0, options=options) as server:
        healthy = await AudioSocketClient.connect(server.port)
        await healthy.send_uuid(KNOWN)
        async with asyncio.timeout(1):
            healthy_call = await router.calls.get()

        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        stream = _prefix(start) + b"".join(body)
        at = 0
        try:
            for size in cuts:
                if at >= len(stream):
                    break
                writer.write(stream[at : at + size])
                await writer.drain()
                at += size
            writer.write(stream[at:])
            await writer.drain()
            match end:
                case "hangup":  # what Asterisk does: the hangup kind, then closing
                    writer.write(message(0x00))
                    writer.write_eof()
                case "half-close":
                    writer.write_eof()
                case "reset":  # an abrupt disconnect: RST instead of FIN
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                case "close":
                    writer.close()
        except ConnectionError:
            pass  # the server already refused and closed: fine
        async with asyncio.timeout(1):
            # The fuzzed connection is closed by the server within 1 s.
            await server.wait_connections_closed(keep=1)
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
        for call in router.all:
            if call is not healthy_call:
                assert call.closed

        # The other call is unaffected.
        assert not healthy_call.closed
        await healthy.send_dtmf("7")
        async with asyncio.timeout(1):
            while (signal := await healthy_call.next_signal()) != Dtmf("7"):
                assert isinstance(signal, Dtmf), signal
        await healthy.send_hangup()
        async with asyncio.timeout(1):
            await healthy_call.wait_closed()
            await server.wait_connections_closed()
        await healthy.close()
    assert server.connections == 0
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    _START,
    st.lists(st.one_of(_valid(), _garbage()), max_size=6),
    _END,
    st.lists(st.integers(1, 40), max_size=30),
)
def test_fuzzed_connections_close_cleanly(
    start: str, body: list[bytes], end: str, cuts: list[int]
) -> None:
    asyncio.run(_scenario(start, body, end, cuts))


@given(st.lists(_call_traffic(), max_size=8), st.lists(st.integers(1, 3), max_size=200))
@settings(max_examples=25, deadline=None)
def test_valid_calls_cut_down_to_single_bytes_stay_up(body: list[bytes], cuts: list[int]) -> None:
    async def scenario() -> None:
        router = FakeRouter()
        async with serve_audiosocket(router, "127.0.0.1", 0) as server:
            client = await AudioSocketClient.connect(server.port)
            stream = message(0x01, KNOWN.bytes) + b"".join(body) + message(0x03, b"#")
            at = 0
            for size in [*cuts, len(stream)]:
                await client.send(stream[at : at + size])
                at += size
            async with asyncio.timeout(1):
                call = await router.calls.get()
                digits = [s for b in body if b[0] == 0x03 for s in [Dtmf(chr(b[3]))]]
                got = [await call.next_signal() for _ in range(len(digits) + 1)]
            assert got == [*digits, Dtmf("#")]
            assert not call.closed and client.received.errors == []
            await client.send_hangup()
            async with asyncio.timeout(1):
                await server.wait_connections_closed()
            await client.close()

    asyncio.run(scenario())
