"""baresip (Debian `baresip-core`) as a real SIP peer for tests, driven over its `ctrl_tcp`
module: JSON commands (`dial`, `sndcode`, `hangup`, ...) in, UA events (`CALL_ESTABLISHED`,
`CALL_DTMF_START`, `CALL_CLOSED`, ...) out, each a netstring.

One account, `sip:callee@127.0.0.1:PORT`, answers every call at once; audio is a WAV file
(8 kHz mono) out and a dead-end bridge device in. With `calls=1` RTP uses exactly `rtp_port`
(and the next port for RTCP), so a test can tap it; more calls get the ports after it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.support.ports import free_port, free_port_run, free_udp_tcp_port


def write_tone_wav(path: Path, rate: int = 8000, seconds: float = 30.0, hz: float = 440.0) -> Path:
    """A mono 16-bit sine at `rate` (baresip's `aufile` source wants the codec's rate)."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (np.sin(2 * np.pi * hz * t) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@dataclass
class Baresip:
    sip_port: int
    rtp_port: int
    events: list[dict[str, object]] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _responses: asyncio.Queue[dict[str, object]] = field(default_factory=asyncio.Queue)

    @property
    def uri(self) -> str:
        return f"sip:callee@127.0.0.1:{self.sip_port}"

    async def command(self, name: str, params: str = "", timeout_s: float = 5) -> str:
        """Run a baresip command; its output. AssertionError when baresip says it failed."""
        assert self._writer is not None
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        response = await asyncio.wait_for(self._responses.get(), timeout_s)
        assert response.get("ok") is True, f"baresip {name} {params!r}: {response}"
        return str(response.get("data", ""))

    def of_type(self, kind: str) -> list[dict[str, object]]:
        return [e for e in self.events if e.get("type") == kind]

    async def wait_event(self, kind: str, count: int = 1, timeout_s: float = 10) -> None:
        """Wait until `count` events of type `kind` have arrived."""
        try:
            async with asyncio.timeout(timeout_s):
                while len(self.of_type(kind)) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"baresip: {len(self.of_type(kind))} of {count} {kind} events in {timeout_s} s; "
                f"events {[e.get('type') for e in self.events]}\n{self.log()}"
            ) from None

    def log(self) -> str:
        return self.output.decode(errors="replace")[-4000:]

    async def _read_events(self) -> None:
        assert self._reader is not None
        while True:
            try:
                size = await self._reader.readuntil(b":")
            except asyncio.IncompleteReadError:
                return
            body = await self._reader.readexactly(int(size[:-1]) + 1)  # + the trailing ","
            message = json.loads(body[:-1])
            if message.get("response"):
                self._responses.put_nowait(message)
            else:
                self.events.append(message)
                self._changed.set()


def _config(
    folder: Path,
    b: Baresip,
    ctrl_port: int,
    tls: tuple[Path, Path] | None,
    calls: int,
    g722: bool,
) -> None:
    wav = write_tone_wav(folder / "source.wav", rate=16_000 if g722 else 8000)
    lines = [
        "poll_method epoll",
        f"sip_listen 127.0.0.1:{b.sip_port}",
        "net_interface 127.0.0.1",
        f"rtp_ports {b.rtp_port}-{b.rtp_port + 2 * calls - 1}",
        "module_path /usr/lib/baresip/modules",
        "module g722.so" if g722 else "module g711.so",
        "module aufile.so",
        "module aubridge.so",
        "module_app account.so",
        "module_app menu.so",
        "module_app ctrl_tcp.so",
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
        f"audio_source aufile,{wav}",
        "audio_player aubridge,nowhere",
    ]
    if tls is not None:
        cert, ca = tls
        lines += [f"sip_certificate {cert}", f"sip_cafile {ca}"]
    (folder / "config").write_text("\n".join(lines) + "\n")
    (folder / "accounts").write_text(f"<{b.uri}>;regint=0;answermode=auto\n")
    (folder / "contacts").write_text("")


async def _launch(
    exe: str, folder: Path, b: Baresip
) -> tuple[asyncio.subprocess.Process, asyncio.Task[None]]:
    """Start baresip; return once it is ready or has exited (or 10 s have passed)."""
    proc = await asyncio.create_subprocess_exec(
        exe, "-f", str(folder), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    ready = asyncio.Event()

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            b.output += chunk
            if b"baresip is ready." in b.output:
                ready.set()

    reader_task = asyncio.create_task(pump())
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([waiter, reader_task], timeout=10, return_when="FIRST_COMPLETED")
    waiter.cancel()
    if reader_task.done():  # its output ended: it has exited or is about to
        await proc.wait()
    return proc, reader_task


@asynccontextmanager
async def baresip(
    folder: Path, *, tls: tuple[Path, Path] | None = None, calls: int = 1, g722: bool = False
) -> AsyncIterator[Baresip]:
    """baresip running in `folder` until the block ends. `tls`: (its own certificate+key PEM,
    the CA file it trusts) for `transport=tls` calls; `calls`: how many calls it may hold at
    once (RTP ports); `g722`: G.722 as its only codec (else PCMU and PCMA)."""
    exe = shutil.which("baresip")
    assert exe, "baresip is installed by `make test` (Debian package baresip-core)"
    os.makedirs(folder, exist_ok=True)
    # Its ports are checked free, then bound by baresip a moment later: another program may
    # take one in between. A start that finds a port taken picks new ports (the test itself
    # is not repeated); any other failure fails the test.
    for _ in range(3):
        ctrl_port = free_port(socket.SOCK_STREAM)
        b = Baresip(sip_port=free_udp_tcp_port(), rtp_port=free_port_run(2 * calls))
        _config(folder, b, ctrl_port, tls, calls, g722)
        proc, reader_task = await _launch(exe, folder, b)
        if proc.returncode is None or b"Address already in use" not in b.output:
            break
        await reader_task
    events_task: asyncio.Task[None] | None = None
    try:
        assert b"baresip is ready." in b.output, f"baresip did not start:\n{b.log()}"
        b._reader, b._writer = await asyncio.open_connection("127.0.0.1", ctrl_port)
        events_task = asyncio.create_task(b._read_events())
        yield b
    finally:
        if b._writer is not None and proc.returncode is None:
            try:
                await b.command("quit")
            except (AssertionError, OSError, TimeoutError):
                pass
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if b._writer is not None:
            b._writer.close()
        for task in (events_task, reader_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def rfc4733_events(payloads: list[bytes], payload_type: int) -> list[tuple[int, bool, int]]:
    """(event, end bit, duration) of each telephone-event RTP packet of `payload_type`."""
    out = []
    for packet in payloads:
        if len(packet) >= 16 and packet[1] & 0x7F == payload_type:
            event, flags, duration = struct.unpack("!BBH", packet[12:16])
            out.append((event, bool(flags & 0x80), duration))
    return out


def rfc4733_digits(events: list[tuple[int, bool, int]]) -> str:
    """The digits the events spell: one per event that ends (retransmitted ends count once)."""
    names = "0123456789*#ABCD"
    digits, last_end = [], None
    for event, end, duration in events:
        if end and (event, duration) != last_end:
            digits.append(names[event] if event < 16 else "?")
        last_end = (event, duration) if end else None
    return "".join(digits)
