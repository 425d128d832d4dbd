"""Running sipp (Debian `sip-tester`) against the node from tests, and tapping RTP on loopback.

Scenario templates live in `sipp_scenarios/`; `@NAME@` placeholders are filled per test (sipp
reads `rtp_stream` and pause values when it loads the file, so they cannot be `-key`s).
`RtpTap` reads every UDP datagram to one port on `lo` through an AF_PACKET socket, so the
test hears the node's RTP exactly as it left the node, while sipp is the far end.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from media.g711 import ulaw_decode, ulaw_encode
from media.resample import resample
from tests.support.ports import free_port, free_port_run, udp_port_bound

SCENARIOS = Path(__file__).parent / "sipp_scenarios"
DTMF_PCAPS = Path("/usr/share/sip-tester")


NODE_RTP_PORTS = 20
"""The node's RTP port range in tests: 10 RTP/RTCP pairs, enough for its 4 call slots."""


def node_rtp_ports() -> dict[str, int]:
    """`sip` settings for the node's RTP ports: a run of free ports that it cannot wander out
    of (pjsua's default range of 10 000 ports would walk into a peer's RTP range)."""
    return {"rtp_port": free_port_run(NODE_RTP_PORTS), "rtp_port_range": NODE_RTP_PORTS}


def write_ulaw_wav(samples16k: npt.NDArray[np.int16], path: Path) -> Path:
    """16 kHz speech as an 8 kHz G.711 mu-law WAV (what sipp's rtp_stream plays)."""
    codes = bytes(ulaw_encode(resample(samples16k, 16_000, 8_000)))
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)  # WAVE_FORMAT_MULAW
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(codes)) + codes
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@dataclass(frozen=True)
class SipMessage:
    """One message of sipp's message log (`-trace_msg`), as sipp sent or received it."""

    sent: bool
    text: str

    @property
    def start_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def body(self) -> str:
        return self.text.split("\n\n", 1)[1] if "\n\n" in self.text else ""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive)."""
        for line in self.text.split("\n\n", 1)[0].split("\n")[1:]:
            hname, sep, value = line.partition(":")
            if sep and hname.strip().lower() == name.lower():
                return value.strip()
        return None

    def sdp_audio(self) -> list[str]:
        """The payload types of the body's `m=audio` line, in order."""
        for line in self.body.split("\n"):
            if line.startswith("m=audio "):
                return line.split()[3:]
        return []

    def rtpmaps(self) -> dict[str, str]:
        """payload type → `NAME/RATE` from the body's `a=rtpmap` lines."""
        maps: dict[str, str] = {}
        for line in self.body.split("\n"):
            if line.startswith("a=rtpmap:"):
                pt, _, name = line[len("a=rtpmap:") :].partition(" ")
                maps[pt] = name.strip()
        return maps


@dataclass
class SippResult:
    returncode: int
    errors: str
    messages: str

    def explain(self) -> str:
        return f"sipp exited {self.returncode}\nerrors:\n{self.errors}\nmessages:\n{self.messages}"

    def log(self) -> list[SipMessage]:
        """Every message in the message log, in order."""
        out: list[SipMessage] = []
        for chunk in re.split(r"^-{10,} .*$", self.messages, flags=re.MULTILINE):
            head, _, text = chunk.strip("\n").partition("\n")
            if " message sent " in head or " message received " in head:
                text = text.replace("\r\n", "\n").strip("\n")
                out.append(SipMessage(sent=" sent " in head, text=text + "\n"))
        return out

    def received(self, start: str) -> list[SipMessage]:
        """The messages sipp received whose start line begins with `start`."""
        return [m for m in self.log() if not m.sent and m.start_line.startswith(start)]

    def sent(self, start: str) -> list[SipMessage]:
        """The messages sipp sent whose start line begins with `start`."""
        return [m for m in self.log() if m.sent and m.start_line.startswith(start)]


async def run_sipp(
    scenario: str,
    port: int,
    tmp: Path,
    *,
    service: str = "1000",
    fill: dict[str, str] | None = None,
    media_port: int | None = None,
    calls: int = 1,
    transport: str = "u1",
    timeout_s: float = 30,
    extra: list[str] | None = None,
) -> SippResult:
    """Run a scenario (a template name in `sipp_scenarios/` or a sipp built-in like `uac`)."""
    exe = shutil.which("sipp")
    assert exe, "sipp is installed by `make test` (Debian package sip-tester)"
    os.makedirs(tmp, exist_ok=True)  # sipp exits at once if it cannot write its logs
    if scenario.endswith(".xml"):
        text = (SCENARIOS / scenario).read_text()
        for key, value in (fill or {}).items():
            text = text.replace(f"@{key}@", value)
        path = tmp / f"run-{scenario}"
        path.write_text(text)
        how = ["-sf", str(path)]
    else:
        how = ["-sn", scenario]
    errors, messages = tmp / "sipp-errors.log", tmp / "sipp-messages.log"
    args = [
        exe, *how, "127.0.0.1:" + str(port), "-s", service, "-m", str(calls), "-r", "10",
        "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(free_port()), "-t", transport,
        "-mp", str(media_port or free_port_run(4)), "-timeout", f"{int(timeout_s)}s",
        "-timeout_error", "-trace_err", "-error_file", str(errors),
        "-trace_msg", "-message_file", str(messages), "-nostdin", *(extra or []),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout_s + 10):
            _, stderr = await proc.communicate()
    except BaseException:  # timed out, or the test gave up on it (cancelled): no orphan sipp
        if proc.returncode is None:
            proc.kill()
        await asyncio.shield(proc.wait())
        raise

    def read(path: Path) -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    return SippResult(
        proc.returncode or 0, read(errors) + stderr.decode(errors="replace"), read(messages)
    )


async def listening_sipp(
    scenario: str, port: int, tmp: Path, *, timeout_s: float = 20, **options: Any
) -> asyncio.Task[SippResult]:
    """A sipp UAS on UDP `port` (one call), returned once sipp holds the port: a UAS that is
    not listening yet draws an ICMP port-unreachable, which baresip (libre) takes as the
    call's final failure instead of retransmitting. Fails if sipp exits before it listens."""
    extra = [*options.pop("extra", []), "-p", str(port)]
    run = run_sipp(scenario, 1, tmp, timeout_s=timeout_s, extra=extra, **options)
    task = asyncio.create_task(run)
    try:
        async with asyncio.timeout(10):
            while not udp_port_bound(port):
                if task.done():
                    explain = task.result().explain()
                    raise AssertionError(f"sipp exited before it listened: {explain}")
                await asyncio.sleep(0.02)  # a readiness probe: sipp announces nothing on binding
    except BaseException:
        task.cancel()
        await asyncio.wait([task])
        raise
    return task


_SO_ATTACH_FILTER, _SO_RCVBUFFORCE = 26, 33  # Linux <asm-generic/socket.h>


@dataclass
class _Bpf:
    """A classic BPF program for SO_ATTACH_FILTER (`program` points into `code`: keep both)."""

    code: ctypes.Array[ctypes.c_char]
    program: bytes


def _udp_dst_port_filter(port: int) -> _Bpf:
    """`ip and udp and dst port PORT` (unfragmented) on an Ethernet-framed socket such as `lo`."""
    drop = 10
    ops = [  # (code, jt, jf, k); jumps count from the next instruction
        (0x28, 0, 0, 12),  # ldh [12]: ethertype
        (0x15, 0, drop - 2, 0x0800),  # IPv4
        (0x30, 0, 0, 23),  # ldb [23]: protocol
        (0x15, 0, drop - 4, 17),  # UDP
        (0x28, 0, 0, 20),  # ldh [20]: flags and fragment offset
        (0x45, drop - 6, 0, 0x1FFF),  # a later fragment: no UDP header
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): the IP header's length
        (0x48, 0, 0, 16),  # ldh [x+16]: the UDP destination port
        (0x15, 0, drop - 9, port),
        (0x06, 0, 0, 0x40000),  # accept (the whole packet)
        (0x06, 0, 0, 0),  # drop
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in ops))
    return _Bpf(code, struct.pack("HL", len(ops), ctypes.addressof(code)))


@dataclass
class RtpTap:
    """Every UDP payload sent to `port` on loopback, captured while the tap is open."""

    port: int
    packets: list[bytes] = field(default_factory=list)
    _sock: socket.socket | None = None
    _filter: _Bpf | None = None

    def __enter__(self) -> RtpTap:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        # Only UDP to `port` is queued (a kernel filter), in a large buffer: a raw socket on
        # `lo` otherwise queues every loopback packet of the machine, and on a busy machine
        # the queue overflowed and lost the tapped call's last packets.
        self._filter = _udp_dst_port_filter(self.port)
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, self._filter.program)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("lo", 0))
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _read(self) -> None:
        assert self._sock is not None
        while True:
            try:
                frame, addr = self._sock.recvfrom(65_536)
            except BlockingIOError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue  # loopback shows each packet twice: keep the incoming copy
            ip = frame[14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            udp = ip[(ip[0] & 0x0F) * 4 :]
            if struct.unpack("!H", udp[2:4])[0] == self.port:
                self.packets.append(udp[8:])

    def pcmu_audio(self) -> npt.NDArray[np.int16]:
        """The PCMU (payload type 0) RTP payloads in arrival order, decoded to 16 kHz."""
        rtp = [p for p in self.packets if len(p) > 12 and p[1] & 0x7F == 0]
        if not rtp:
            return np.zeros(0, dtype=np.int16)
        return resample(ulaw_decode(b"".join(p[12:] for p in rtp)), 8_000, 16_000)
