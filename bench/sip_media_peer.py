"""The far end of the SIP media bench: one sipp for the signalling of all the calls, and one RTP
socket per call in this process.

sipp (Debian `sip-tester`) runs `bench/sipp/media_uac.xml`: an INVITE with a PCMU offer per
call, `rate` calls a second, at most `calls` open at once (`-l`). Each call's offer carries the
port of that call's RTP socket here (the injection file's field0), and sipp logs each answer
(the node's RTP address) or refusal, which `SippUac` reads back. The calls hold until
`SippUac.hang_up`: sipp, told twice to quit (SIGUSR1), aborts each open call with a BYE and
exits. This process sends one PCMU packet per call every 20 ms (aiortc's `RtpPacket`) and
records every RTP packet the node sends with the kernel's receive time (`SO_TIMESTAMPNS`), so
the packet gaps measured are the node's pacing, not this process's scheduling. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiortc.rtp import RtpPacket, is_rtcp

from bench.churn.caller import free_udp_port
from media.g711 import ulaw_encode

SCENARIO = Path(__file__).resolve().parent / "sipp" / "media_uac.xml"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux: the kernel stamps each datagram with its receive time (CLOCK_REALTIME, ns)."""
PCMU_PAYLOAD = 160
"""8 kHz mu-law, 20 ms."""
SETUP_TIMEOUT_S = 10.0
"""How long a call may take to be answered after its INVITE was due."""
HOLD_S = 12 * 3600
"""sipp's `-d` and `-timeout`: an answered call holds until `SippUac.hang_up`, and a sipp whose
bench died ends its calls (BYE) after this long."""
_ANSWERED = re.compile(r"answered (\d+) ([0-9.]+) (\d+)")
_REFUSED = re.compile(r"refused (\d+) (\d{3})")


def tone_payload(hz: float = 400.0, level: float = 6000.0) -> bytes:
    """20 ms of a tone as PCMU (400 Hz fits 8 whole cycles: every packet is the same)."""
    t = np.arange(PCMU_PAYLOAD) / 8000
    return ulaw_encode((level * np.sin(2 * math.pi * hz * t)).astype(np.int16))


@dataclass
class Received:
    """RTP packets from the node on one call: kernel receive times (s) and sequence numbers."""

    times: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    payload_types: set[int] = field(default_factory=set)


def _kernel_time(ancdata: list[tuple[int, int, bytes]]) -> float:
    """A datagram's `SO_TIMESTAMPNS` receive time (s), or now when the kernel gave none."""
    for level, kind, cdata in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = struct.unpack("@qq", cdata[:16])
            return float(sec + nsec / 1e9)
    return time.time()


class RtpEndpoint:
    """One call's RTP socket: sends PCMU to the node, stamps what the node sends."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.remote: tuple[str, int] | None = None
        """The node's RTP address, from its answer: set once the call is answered."""
        self.received = Received()
        self.recording = False
        self.sent = 0
        self._seq = secrets.randbelow(1 << 16)
        self._ts = secrets.randbelow(1 << 32)
        self._ssrc = secrets.randbelow(1 << 32)
        self._closed = False
        loop.add_reader(self.sock.fileno(), self._read)

    def send(self, payload: bytes) -> None:
        if self.remote is None or self._closed:
            return
        packet = RtpPacket(
            payload_type=0,
            sequence_number=self._seq,
            timestamp=self._ts,
            ssrc=self._ssrc,
            payload=payload,
        )
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + PCMU_PAYLOAD) & 0xFFFFFFFF
        try:
            self.sock.sendto(packet.serialize(), self.remote)
            self.sent += 1
        except OSError:
            pass

    def _read(self) -> None:
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except OSError:  # nothing left to read (BlockingIOError), or closed
                return
            # RTCP (RFC 5761): the node's, for the call whose RTP port is one below this
            # socket's (the kernel picks the ports of these sockets).
            if not self.recording or is_rtcp(data):
                continue
            try:
                packet = RtpPacket.parse(data)
            except ValueError:
                continue
            self.received.times.append(_kernel_time(ancdata))
            self.received.seqs.append(int(packet.sequence_number))
            self.received.payload_types.add(int(packet.payload_type))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


@dataclass
class PeerCall:
    """One call of a `SippUac`: its RTP socket, whose port the call's offer carries, and why
    it was not answered (empty while it is, or may still be)."""

    rtp: RtpEndpoint
    failure: str = ""

    @property
    def answered(self) -> bool:
        return self.rtp.remote is not None


def sipp_command(exe: str, node: tuple[str, int], number: str, calls: int, rate: float,
                 workdir: Path) -> list[str]:  # fmt: skip
    """sipp's command line: `calls` calls to `number` at the node, `rate` a second."""
    return [
        exe, "-sf", str(SCENARIO), f"{node[0]}:{node[1]}", "-s", number,
        "-r", f"{rate:g}", "-l", str(calls), "-d", str(HOLD_S * 1000), "-timeout", f"{HOLD_S}s",
        "-i", "127.0.0.1", "-mi", "127.0.0.1", "-t", "u1",
        "-mp", str(free_udp_port()), "-cp", str(free_udp_port()),
        "-inf", str(workdir / "calls.csv"), "-aa", "-nostdin",
        "-trace_logs", "-log_file", str(workdir / "calls.log"),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
    ]  # fmt: skip


class SippUac:
    """One sipp placing calls to the node (`start`), and the calls' RTP sockets."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        calls: list[PeerCall],
        workdir: tempfile.TemporaryDirectory[str],
        rate: float,
    ) -> None:
        self.proc = proc
        self.calls = calls
        self.rate = rate
        self.started = time.monotonic()
        self._workdir = workdir
        self._by_port = {call.rtp.port: call for call in calls}
        self._log_offset = 0
        self._closed = False

    @property
    def dir(self) -> Path:
        """sipp's injection file and logs."""
        return Path(self._workdir.name)

    @classmethod
    async def start(
        cls, node: tuple[str, int], number: str, calls: int, rate: float = 50.0
    ) -> SippUac:
        """Start sipp placing `calls` calls to `number` at `node`, `rate` a second."""
        exe = shutil.which("sipp")
        if exe is None:
            raise RuntimeError("sipp is not installed (Debian package sip-tester)")
        loop = asyncio.get_running_loop()
        placed = [PeerCall(RtpEndpoint(loop)) for _ in range(calls)]
        workdir = tempfile.TemporaryDirectory(prefix="voicenode-sip-media-")
        d = Path(workdir.name)
        try:
            ports = "".join(f"{call.rtp.port};\n" for call in placed)
            (d / "calls.csv").write_text("SEQUENTIAL\n" + ports)
            with (d / "stderr.log").open("w") as err:
                proc = await asyncio.create_subprocess_exec(
                    *sipp_command(exe, node, number, calls, rate, d),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                )  # fmt: skip
        except BaseException:
            for call in placed:
                call.rtp.close()
            workdir.cleanup()
            raise
        return cls(proc, placed, workdir, rate)

    async def answered(self, timeout_s: float = SETUP_TIMEOUT_S) -> list[PeerCall]:
        """Wait until each call is answered or refused, sipp has exited, or `timeout_s` have
        passed since the last call's INVITE was due: the answered calls (for each of the
        others, `failure` says why)."""
        deadline = self.started + len(self.calls) / self.rate + timeout_s
        while self.proc.returncode is None and time.monotonic() < deadline:
            self._read_log()
            if all(call.answered or call.failure for call in self.calls):
                break
            await asyncio.sleep(0.02)  # sipp's log is a file: read what it has added
        self._read_log()
        why = self.explain() if self.proc.returncode is not None else ""
        for call in self.calls:
            if not call.answered and not call.failure:
                call.failure = why or f"no answer in {timeout_s:g} s"
        return [call for call in self.calls if call.answered]

    def _read_log(self) -> None:
        try:
            with (self.dir / "calls.log").open("rb") as log:
                log.seek(self._log_offset)
                added = log.read()
        except FileNotFoundError:
            return
        whole = added[: added.rfind(b"\n") + 1]  # a line sipp has not finished waits
        self._log_offset += len(whole)
        for line in whole.decode(errors="replace").splitlines():
            self._on_line(line.strip())

    def _on_line(self, line: str) -> None:
        """One call's answer or refusal (the first word on each call counts: sipp places a
        new call for each one that ended, with a port already in use, until `hang_up`)."""
        answered, refused = _ANSWERED.fullmatch(line), _REFUSED.fullmatch(line)
        match = answered or refused
        call = self._by_port.get(int(match[1])) if match else None
        if call is None or call.answered or call.failure:
            return
        if answered:
            call.rtp.remote = (answered[2], int(answered[3]))
        elif refused:
            call.failure = f"the node answered {refused[2]}"

    def explain(self) -> str:
        """sipp's exit status and the end of what it wrote to stderr and its error log."""
        text = "".join(_read(self.dir / name) for name in ("stderr.log", "errors.log"))
        return f"sipp exit status {self.proc.returncode}: {text.strip()[-800:]}"

    async def hang_up(self, timeout_s: float = 5.0) -> None:
        """End every call: sipp, told twice to quit (SIGUSR1), aborts each open call with a
        BYE and exits (it is killed if it has not within `timeout_s`). Closes the sockets."""
        loop = asyncio.get_running_loop()
        exited = loop.create_task(self.proc.wait())
        deadline = loop.time() + timeout_s
        try:
            while not exited.done() and loop.time() < deadline:
                with contextlib.suppress(ProcessLookupError):  # it has just exited
                    self.proc.send_signal(signal.SIGUSR1)
                # Signals sent before sipp has handled the first merge into one: repeat.
                await asyncio.wait([exited], timeout=0.2)
            if not exited.done():
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            await exited
        finally:
            self.close()

    def close(self) -> None:
        """Kill sipp if it still runs (its calls then end without a BYE), close the sockets
        and remove sipp's files."""
        if self._closed:
            return
        self._closed = True
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        for call in self.calls:
            call.rtp.close()
        self._workdir.cleanup()


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class SipPeer:
    """Calls placed one by one, each from a sipp of its own (a `SippUac` of one call), for
    callers that place and hang up each call themselves (`bench.sip_fuzz_run`)."""

    def __init__(self, node: tuple[str, int]) -> None:
        self.node = node
        self._uacs: dict[int, SippUac] = {}

    @classmethod
    async def open(cls, node: tuple[str, int]) -> SipPeer:
        return cls(node)

    async def call(self, number: str, timeout_s: float = SETUP_TIMEOUT_S) -> PeerCall:
        """Place a call and wait for its answer; ValueError when it is not answered."""
        uac = await SippUac.start(self.node, number, calls=1)
        placed = await uac.answered(timeout_s)
        if not placed:
            await uac.hang_up()
            raise ValueError(uac.calls[0].failure)
        self._uacs[id(placed[0])] = uac
        return placed[0]

    async def hang_up(self, call: PeerCall, timeout_s: float = 5.0) -> None:
        uac = self._uacs.pop(id(call), None)
        if uac is not None:
            await uac.hang_up(timeout_s)

    def close(self) -> None:
        for uac in self._uacs.values():
            uac.close()
        self._uacs.clear()


async def send_rtp(
    calls: list[PeerCall], stop: asyncio.Event, payload: bytes, spread: bool = True
) -> None:
    """One PCMU packet to every call every 20 ms, on absolute deadlines (no drift).

    `spread`: call i sends at phase i/N of the 20 ms period, as independent callers do (the
    node then wakes for each call's packets, not once for all); else all at once."""
    loop = asyncio.get_running_loop()
    period = 0.020
    phases = [period * i / len(calls) if spread else 0.0 for i in range(len(calls))]
    start = loop.time()
    tick = 0
    while not stop.is_set():
        base = start + tick * period
        for call, phase in zip(calls, phases, strict=True):
            delay = base + phase - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            call.rtp.send(payload)
        tick += 1
        if loop.time() - (start + tick * period) > 0.1:  # stalled: resume, do not burst
            start = loop.time() - tick * period
        if not calls:
            await asyncio.sleep(period)
