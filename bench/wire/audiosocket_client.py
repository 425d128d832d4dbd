"""A protocol-exact AudioSocket client: what Asterisk's `AudioSocket()` application does.

Written from the protocol text, independently of `media.audiosocket` (so the node's server is
tested against a client that does not share its code): a 3-byte header (kind, big-endian
length), the UUID first, 8 kHz slin audio as kind 0x10 (or a higher-rate kind), DTMF as one
ASCII byte (kind 0x03), hangup as 00 00 00. Received messages are read exactly as Asterisk
reads them (header, then `length` bytes) by an owned task, recorded in `received` and handed
to `on_message(kind, payload)` if given. Used by the bench's AudioSocket leg and the tests.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

HANGUP, UUID, DTMF, SLIN, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
OnMessage = Callable[[int, bytes], None]
"""(kind, payload) of each received message, called from the read task as it arrives."""

RATE_OF_KIND = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}


def message(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


@dataclass
class Received:
    kinds: list[int] = field(default_factory=list)
    audio: dict[int, bytearray] = field(default_factory=dict)
    audio_sizes: list[int] = field(default_factory=list)
    errors: list[bytes] = field(default_factory=list)
    hangup: bool = False


class AudioSocketClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_message: OnMessage | None = None,
        keep: bool = True,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.received = Received()
        self.on_message = on_message
        self.keep = keep
        """Record received audio in `received` (off: only `on_message` sees it)."""
        self.closed = asyncio.Event()  # the server closed the connection
        self._got = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(
        cls,
        port: int,
        host: str = "127.0.0.1",
        *,
        on_message: OnMessage | None = None,
        keep: bool = True,
    ) -> AudioSocketClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, on_message=on_message, keep=keep)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_uuid(self, call_uuid: uuid.UUID) -> None:
        await self.send(message(UUID, call_uuid.bytes))

    async def send_audio(self, pcm: bytes, kind: int = SLIN) -> None:
        await self.send(message(kind, pcm))

    async def send_dtmf(self, digit: str) -> None:
        await self.send(message(DTMF, digit.encode("ascii")))

    async def send_hangup(self) -> None:
        await self.send(message(HANGUP))

    async def stream(
        self, samples: npt.NDArray[np.int16], kind: int = SLIN, realtime: bool = True
    ) -> None:
        """Send audio in 20 ms messages, at real-time pace like a live channel."""
        rate = RATE_OF_KIND[kind]
        n = rate // 50
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, at in enumerate(range(0, len(samples), n)):
            chunk = samples[at : at + n]
            if len(chunk) < n:
                chunk = np.concatenate([chunk, np.zeros(n - len(chunk), np.int16)])
            await self.send_audio(chunk.astype("<i2").tobytes(), kind)
            if realtime:
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))

    async def silence(self, seconds: float, kind: int = SLIN) -> None:
        rate = RATE_OF_KIND[kind]
        await self.stream(np.zeros(int(rate * seconds), np.int16), kind)

    def audio(self, kind: int = SLIN) -> npt.NDArray[np.int16]:
        return np.frombuffer(bytes(self.received.audio.get(kind, b"")), dtype="<i2").astype(
            np.int16
        )

    async def wait_for(self, predicate: Callable[[], object], limit_s: float = 10.0) -> None:
        """Wait until `predicate()` is true, re-checking after every received message."""
        async with asyncio.timeout(limit_s):
            while not predicate():
                if self.closed.is_set():
                    assert predicate(), "the server closed the connection"
                self._got.clear()
                await self._got.wait()

    async def _read(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(3)
                kind, length = struct.unpack(">BH", header)
                payload = await self.reader.readexactly(length) if length else b""
                got = self.received
                got.kinds.append(kind)
                if kind in RATE_OF_KIND:
                    if self.keep:
                        got.audio.setdefault(kind, bytearray()).extend(payload)
                    got.audio_sizes.append(length)
                elif kind == ERROR:
                    got.errors.append(payload)
                elif kind == HANGUP:
                    got.hangup = True
                if self.on_message is not None:
                    self.on_message(kind, payload)
                self._got.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            self._got.set()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
