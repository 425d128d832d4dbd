"""The far end of the SIP media bench: a minimal SIP UAC over UDP with one RTP socket per call.

It speaks real SIP to the node (INVITE with a PCMU offer, ACK, BYE; requests from the node
such as a BYE or a session refresh get 200 OK), sends one PCMU packet per call every 20 ms,
and records every RTP packet the node sends with the kernel's receive time
(`SO_TIMESTAMPNS`), so the packet gaps measured are the node's pacing, not this process's
scheduling. Loopback only: no retransmission or loss handling beyond what UDP on `lo` needs.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from media.g711 import ulaw_encode

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux: the kernel stamps each datagram with its receive time (CLOCK_REALTIME, ns)."""
PCMU_PAYLOAD = 160
"""8 kHz mu-law, 20 ms."""


def tone_payload(hz: float = 400.0, level: float = 6000.0) -> bytes:
    """20 ms of a tone as PCMU (400 Hz fits 8 whole cycles: every packet is the same)."""
    t = np.arange(PCMU_PAYLOAD) / 8000
    return ulaw_encode((level * np.sin(2 * math.pi * hz * t)).astype(np.int16))


@dataclass
class SipResponse:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class SipRequestIn:
    method: str
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]


_COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
}


def parse_message(data: bytes) -> SipResponse | SipRequestIn:
    """A SIP message's start line, headers (lower-case names; the first of each) and body."""
    text = data.decode("utf-8", errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, str] = {}
    raw: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = _COMPACT.get(name.strip().lower(), name.strip().lower())
        raw.append((key, value.strip()))
        headers.setdefault(key, value.strip())
    start = lines[0].split(" ", 2)
    if start[0].startswith("SIP/"):
        if len(start) < 2 or not start[1].isdigit():
            raise ValueError(f"bad status line: {lines[0]!r}")
        return SipResponse(int(start[1]), headers, body)
    return SipRequestIn(start[0], headers, raw)


def sdp_audio_address(sdp: str) -> tuple[str, int]:
    """(connection address, audio port) of an SDP body."""
    host, port = "", 0
    for line in sdp.splitlines():
        if line.startswith("c=IN IP4 "):
            host = line.split()[2]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    if not host or not port:
        raise ValueError("the SDP answer has no IPv4 audio address")
    return host, port


def _angle_uri(value: str) -> str:
    start, end = value.find("<"), value.find(">")
    return value[start + 1 : end] if 0 <= start < end else value.split(";")[0].strip()


@dataclass
class Received:
    """RTP packets from the node on one call: kernel receive times (s) and sequence numbers."""

    times: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    payload_types: set[int] = field(default_factory=set)


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
        self.received = Received()
        self.recording = False
        self.sent = 0
        self._seq = secrets.randbelow(1 << 16)
        self._ts = secrets.randbelow(1 << 32)
        self._ssrc = secrets.randbelow(1 << 32)
        loop.add_reader(self.sock.fileno(), self._read)

    def send(self, payload: bytes) -> None:
        if self.remote is None:
            return
        header = struct.pack("!BBHII", 0x80, 0, self._seq, self._ts, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + PCMU_PAYLOAD) & 0xFFFFFFFF
        try:
            self.sock.sendto(header + payload, self.remote)
            self.sent += 1
        except OSError:
            pass

    def _read(self) -> None:
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not self.recording or len(data) < 12 or data[0] >> 6 != 2:
                continue
            if 200 <= data[1] <= 204:  # RTCP (RFC 5761): the node's, for the call whose RTP
                continue  # port is one below this socket's (the kernel picks our ports)
            stamp = time.time()
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack("@qq", cdata[:16])
                    stamp = sec + nsec / 1e9
            self.received.times.append(stamp)
            self.received.seqs.append(struct.unpack("!H", data[2:4])[0])
            self.received.payload_types.add(data[1] & 0x7F)

    def close(self) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


class PeerCall:
    """One outgoing call's dialog state."""

    def __init__(self, peer: SipPeer, number: str) -> None:
        self.peer = peer
        self.call_id = secrets.token_hex(8) + "@bench"
        self.tag = secrets.token_hex(4)
        self.number = number
        self.rtp = RtpEndpoint(peer.loop)
        self.remote_tag = ""
        self.target = ""
        self.cseq = 1
        self.answered: asyncio.Future[int] = peer.loop.create_future()
        self.bye_done: asyncio.Future[int] = peer.loop.create_future()
        self.ended_by_node = False

    def _headers(self, method: str, cseq: int, to_tag: str = "") -> str:
        p = self.peer
        to = f"<sip:{self.number}@{p.node[0]}:{p.node[1]}>" + (f";tag={to_tag}" if to_tag else "")
        return (
            f"Via: SIP/2.0/UDP 127.0.0.1:{p.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:bench@127.0.0.1:{p.port}>;tag={self.tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:bench@127.0.0.1:{p.port}>\r\n"
        )

    def sdp(self) -> str:
        return (
            "v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp.port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
            "a=sendrecv\r\n"
        )

    def invite(self) -> None:
        p = self.peer
        body = self.sdp()
        msg = (
            f"INVITE sip:{self.number}@{p.node[0]}:{p.node[1]} SIP/2.0\r\n"
            + self._headers("INVITE", 1)
            + f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        )
        p.send(msg)

    def on_response(self, response: SipResponse) -> None:
        method = response.headers.get("cseq", "").split()[-1:]
        if method == ["INVITE"]:
            if response.status < 200:
                return
            if 200 <= response.status < 300:
                self.remote_tag = _tag(response.headers.get("to", ""))
                self.target = _angle_uri(response.headers.get("contact", ""))
                self.ack()  # also for a retransmitted 200 (our ACK was lost or late)
                if not self.answered.done():
                    try:
                        self.rtp.remote = sdp_audio_address(response.body)
                    except ValueError as exc:
                        self.answered.set_exception(exc)
                        return
                    self.answered.set_result(response.status)
            elif not self.answered.done():
                self.answered.set_result(response.status)
        elif method == ["BYE"] and response.status >= 200 and not self.bye_done.done():
            self.bye_done.set_result(response.status)

    def ack(self) -> None:
        p = self.peer
        p.send(
            f"ACK {self.target} SIP/2.0\r\n"
            + self._headers("ACK", 1, self.remote_tag)
            + "Content-Length: 0\r\n\r\n"
        )

    def bye(self) -> None:
        p = self.peer
        self.cseq += 1
        p.send(
            f"BYE {self.target} SIP/2.0\r\n"
            + self._headers("BYE", self.cseq, self.remote_tag)
            + "Content-Length: 0\r\n\r\n"
        )

    def on_request(self, request: SipRequestIn) -> None:
        body = self.sdp() if request.method == "INVITE" else ""
        if request.method == "BYE":
            self.ended_by_node = True
        if request.method != "ACK":
            self.peer.reply(request, 200, body)


def _tag(value: str) -> str:
    for part in value.split(";")[1:]:
        name, _, tag = part.strip().partition("=")
        if name.lower() == "tag":
            return tag
    return ""


class SipPeer(asyncio.DatagramProtocol):
    """The bench's SIP UAC: one UDP socket for the signalling of every call."""

    def __init__(self, loop: asyncio.AbstractEventLoop, node: tuple[str, int]) -> None:
        self.loop = loop
        self.node = node
        self.port = 0
        self.calls: dict[str, PeerCall] = {}
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, node: tuple[str, int]) -> SipPeer:
        loop = asyncio.get_running_loop()
        peer = cls(loop, node)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: peer, local_addr=("127.0.0.1", 0)
        )
        peer._transport = transport
        peer.port = int(transport.get_extra_info("sockname")[1])
        return peer

    def send(self, text: str) -> None:
        assert self._transport is not None
        self._transport.sendto(text.encode(), self.node)

    def reply(self, request: SipRequestIn, status: int, body: str = "") -> None:
        lines = [f"SIP/2.0 {status} OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            lines += [f"{name.title()}: {v}" for n, v in request.raw_headers if n == name]
        if body:
            lines.append(f"Contact: <sip:bench@127.0.0.1:{self.port}>")
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        self.send("\r\n".join(lines) + "\r\n\r\n" + body)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if len(data) < 16:
            return  # keep-alive
        try:
            message = parse_message(data)
        except ValueError:
            return
        call = self.calls.get(message.headers.get("call-id", ""))
        if isinstance(message, SipResponse):
            if call is not None:
                call.on_response(message)
        elif call is not None:
            call.on_request(message)
        elif message.method != "ACK":
            self.reply(message, 481 if message.method != "OPTIONS" else 200)

    async def call(self, number: str, timeout_s: float = 10.0) -> PeerCall:
        """Place a call and wait for its answer; ValueError when it is not answered 2xx."""
        call = PeerCall(self, number)
        self.calls[call.call_id] = call
        call.invite()
        async with asyncio.timeout(timeout_s):
            status = await call.answered
        if not 200 <= status < 300:
            call.rtp.close()
            del self.calls[call.call_id]
            raise ValueError(f"the node answered {status}")
        return call

    async def hang_up(self, call: PeerCall, timeout_s: float = 5.0) -> None:
        if not call.ended_by_node:
            call.bye()
            try:
                async with asyncio.timeout(timeout_s):
                    await call.bye_done
            except TimeoutError:
                pass
        call.rtp.close()
        self.calls.pop(call.call_id, None)

    def close(self) -> None:
        for call in list(self.calls.values()):
            call.rtp.close()
        self.calls.clear()
        if self._transport is not None:
            self._transport.close()


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
