"""Kamailio + RTPEngine from deploy/, for real, in front of stand-in voice nodes (no node).

A caller (sipp) dials through Kamailio; the voice node is a small Python UAS (``FakeNode``:
it records every SIP request and RTP packet it gets) or a sipp UAS. Checked: the tenant
header from the numbers table (and a caller's own one dropped), SDP rewritten by RTPEngine
and the audio flowing through it, 404 for unknown numbers, a node answering OPTIONS with 503
(draining) or not answering leaving rotation, 480/503 when no node can take the call, pike.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from media.g711 import ulaw_encode
from tests.support.ports import free_port

from .sipp import run_sipp, sipp_server
from .sipstack import (
    HOST,
    KamailioFactory,
    RtpEngine,
    options_request,
    sip_options,
    wait_for,
)
from .sipstack import kamailio_fixture as kamailio_fixture  # pytest fixture
from .sipstack import rtpengine_fixture as rtpengine_fixture  # pytest fixture

PACKET_BYTES = 160  # 20 ms of 8 kHz mu-law


# ---------------------------------------------------------------- a stand-in voice node


@dataclass(frozen=True)
class SipRequest:
    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: str

    @classmethod
    def parse(cls, data: bytes) -> SipRequest:
        head, _, body = data.decode().partition("\r\n\r\n")
        start, *lines = head.split("\r\n")
        method, uri, _version = start.split(" ", 2)
        headers = [(n.strip(), v.strip()) for n, _, v in (h.partition(":") for h in lines)]
        return cls(method, uri, headers, body)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def sdp_media(self) -> tuple[str, int]:
        """The (c= address, m=audio port) of the SDP body."""
        address = re.search(r"^c=IN IP4 (\S+)", self.body, re.MULTILINE)
        port = re.search(r"^m=audio (\d+) ", self.body, re.MULTILINE)
        assert address and port, f"no audio in SDP:\n{self.body}"
        return address.group(1), int(port.group(1))


@dataclass(frozen=True)
class RtpPacket:
    source: tuple[str, int]
    payload_type: int
    seq: int
    payload: bytes


@dataclass
class FakeNode(asyncio.DatagramProtocol):
    """A voice node as Kamailio sees it: OPTIONS -> ``options_status``; INVITE -> 200 with a
    PCMU answer on its RTP port (RTP is recorded and echoed) or ``invite_status``; BYE -> 200."""

    sip_port: int
    rtp_port: int
    options_status: int = 200
    invite_status: int = 200
    requests: list[SipRequest] = field(default_factory=list)
    rtp: list[RtpPacket] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.sip_port}"

    def received(self, method: str) -> list[SipRequest]:
        return [r for r in self.requests if r.method == method]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = SipRequest.parse(data)
        self.requests.append(request)
        match request.method:
            case "OPTIONS":
                self.reply(request, addr, self.options_status, "Service Unavailable")
            case "INVITE" if self.invite_status != 200:
                self.reply(request, addr, self.invite_status, "Service Unavailable")
            case "INVITE":
                self.reply(request, addr, 200, "OK", answer=True)
            case "BYE" | "CANCEL":
                self.reply(request, addr, 200, "OK")

    def reply(
        self,
        request: SipRequest,
        addr: tuple[str, int],
        status: int,
        reason: str,
        answer: bool = False,
    ) -> None:
        copied = ["Via", "From", "Call-ID", "CSeq"] + (["Record-Route"] if answer else [])
        lines = [f"SIP/2.0 {status} {'OK' if status == 200 else reason}"]
        lines += [f"{n}: {v}" for n, v in request.headers if n in copied]
        to = request.all("To")[0]
        lines.append(f"To: {to}" if ";tag=" in to else f"To: {to};tag=node{self.sip_port}")
        lines.append(f"Contact: <sip:node@{HOST}:{self.sip_port}>")
        if status == 503:
            lines.append("Retry-After: 30")
        body = ""
        if answer:
            body = (
                f"v=0\r\no=node 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            )
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        assert self.transport is not None
        self.transport.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), addr)


class RtpEcho(asyncio.DatagramProtocol):
    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        _flags, marker_pt, seq = struct.unpack("!BBH", data[:4])
        self.node.rtp.append(RtpPacket(addr, marker_pt & 0x7F, seq, data[12:]))
        assert self.transport is not None
        self.transport.sendto(data, addr)


@contextlib.asynccontextmanager
async def fake_node(options_status: int = 200) -> AsyncIterator[FakeNode]:
    loop = asyncio.get_running_loop()
    node = FakeNode(free_port(), free_port(), options_status)
    sip, _ = await loop.create_datagram_endpoint(lambda: node, local_addr=(HOST, node.sip_port))
    rtp, _ = await loop.create_datagram_endpoint(
        lambda: RtpEcho(node), local_addr=(HOST, node.rtp_port)
    )
    try:
        yield node
    finally:
        sip.close()
        rtp.close()


def pcmu_tone(workdir: Path, seconds: float = 1.0) -> bytes:
    """A rising tone as raw mu-law bytes in ``workdir/pcmu_8k.wav``: the file sipp's
    ``rtp_stream`` sends (160 bytes per packet; no header needed)."""
    t = np.arange(int(8000 * seconds)) / 8000
    data = ulaw_encode((8000 * np.sin(2 * np.pi * (300 + 200 * t) * t)).astype(np.int16))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "pcmu_8k.wav").write_bytes(data)
    return data


# ---------------------------------------------------------------- tests


async def test_call_through_kamailio_and_rtpengine_reaches_the_node_with_its_tenant(
    kamailio: KamailioFactory, rtpengine: RtpEngine, tmp_path: Path
) -> None:
    async with fake_node() as node:
        edge = kamailio([node.uri])
        audio = pcmu_tone(tmp_path / "uac")
        sipp = await run_sipp("uac_pcmu_call.xml", edge.address, tmp_path / "uac")
        assert sipp.returncode == 0, sipp.explain()
        # the whole dialog went through the proxy to the node: INVITE, ACK and BYE
        await wait_for(lambda: len(node.received("BYE")) == 1, "the BYE at the node")

    (invite,) = node.received("INVITE")
    assert len(node.received("ACK")) == 1
    assert invite.uri.startswith("sip:1000@")
    assert invite.all("X-Voicenode-Tenant") == ["demo"]

    # the offer the node got is RTPEngine's, not the caller's
    caller_sdp = re.search(rb"m=audio (\d+) ", sipp.messages.encode())
    assert caller_sdp, sipp.explain()
    address, port = invite.sdp_media()
    assert address == HOST
    assert rtpengine.relays(port), f"{port} is not an RTPEngine port"
    assert port != int(caller_sdp.group(1))

    # the caller's audio arrived, from RTPEngine's port, byte for byte
    assert {p.source for p in node.rtp} == {(HOST, port)}
    assert {p.payload_type for p in node.rtp} == {0}
    assert len(node.rtp) >= 0.9 * len(audio) / PACKET_BYTES
    for packet in node.rtp:
        start = packet.seq * PACKET_BYTES
        assert packet.payload == audio[start : start + PACKET_BYTES], packet.seq


async def test_unknown_number_gets_404_from_the_proxy(
    kamailio: KamailioFactory, tmp_path: Path
) -> None:
    async with fake_node() as node:
        edge = kamailio([node.uri])
        sipp = await run_sipp("uac_refused.xml", edge.address, tmp_path / "uac", service="4242")
    assert sipp.returncode == 0, sipp.explain()
    assert sipp.statuses()[-1] == 404
    assert node.received("INVITE") == []


async def test_caller_tenant_header_is_replaced_by_the_numbers_table(
    kamailio: KamailioFactory, tmp_path: Path
) -> None:
    """sipp as the node this time (uas_answer.xml, echoing RTP); no probes during the call."""
    async with sipp_server("uas_answer.xml", tmp_path / "uas", extra=["-rtp_echo"]) as uas:
        edge = kamailio([uas.uri], {"1000": "demo", "2000": "acme"}, DS_PING_INTERVAL=60)
        pcmu_tone(tmp_path / "uac")
        uac = await run_sipp("uac_pcmu_call.xml", edge.address, tmp_path / "uac", service="2000")
        assert uac.returncode == 0, uac.explain()
    assert uas.result is not None and uas.result.returncode == 0, uas.result
    (invite,) = [m for m in uas.result.received() if m.startswith("INVITE ")]
    assert re.findall(r"^X-Voicenode-Tenant:.*$", invite, re.MULTILINE) == [
        "X-Voicenode-Tenant: acme"
    ]
    assert "forged-by-caller" in uac.messages  # the caller did send one


async def test_draining_node_leaves_rotation_and_comes_back(
    kamailio: KamailioFactory, tmp_path: Path
) -> None:
    async with fake_node() as node:
        edge = kamailio([node.uri], DS_PING_INTERVAL=1, DS_INACTIVE_THRESHOLD=1)
        await edge.wait_node_state(node.uri, "A")

        node.options_status = 503  # draining
        await edge.wait_node_state(node.uri, "I")
        refused = await run_sipp("uac_refused.xml", edge.address, tmp_path / "refused")
        assert refused.returncode == 0, refused.explain()
        assert refused.statuses()[-1] == 503
        assert node.received("INVITE") == []

        node.options_status = 200  # back in service
        await edge.wait_node_state(node.uri, "A")
        pcmu_tone(tmp_path / "call")
        call = await run_sipp("uac_pcmu_call.xml", edge.address, tmp_path / "call")
        assert call.returncode == 0, call.explain()
        assert len(node.received("INVITE")) == 1


async def test_node_answering_options_with_503_gets_no_invite(
    kamailio: KamailioFactory, tmp_path: Path
) -> None:
    """sipp as a draining node: three OPTIONS probes answered 503, nothing else expected."""
    async with sipp_server("uas_options_503.xml", tmp_path / "uas", calls=3) as uas:
        edge = kamailio([uas.uri], DS_PING_INTERVAL=1)
        await edge.wait_node_state(uas.uri, "I")
        refused = await run_sipp("uac_refused.xml", edge.address, tmp_path / "uac")
        assert refused.returncode == 0, refused.explain()
        assert refused.statuses()[-1] == 503
        assert uas.running  # it was answering (503), not gone, when the proxy dropped it
    assert uas.result is not None
    assert uas.result.returncode == 0, uas.result.explain()
    assert [m.split(" ", 1)[0] for m in uas.result.received()] == ["OPTIONS"] * 3
    assert "INVITE" not in uas.result.errors


async def test_node_refusing_an_invite_fails_over_to_the_next_node(
    kamailio: KamailioFactory, rtpengine: RtpEngine, tmp_path: Path
) -> None:
    """Round robin sends one of two calls to the full node first; both end on the other."""
    async with fake_node() as full, fake_node() as spare:
        full.invite_status = 503  # over capacity, though still answering OPTIONS with 200
        edge = kamailio([full.uri, spare.uri], DS_PING_INTERVAL=60)
        pcmu_tone(tmp_path / "uac")
        sipp = await run_sipp("uac_pcmu_call.xml", edge.address, tmp_path / "uac", calls=2)
        assert sipp.returncode == 0, sipp.explain()
        assert sipp.counter("SuccessfulCall") == 2
    assert len(full.received("INVITE")) >= 1
    assert len(spare.received("INVITE")) == 2
    for invite in spare.received("INVITE"):
        assert rtpengine.relays(invite.sdp_media()[1])
        assert invite.all("X-Voicenode-Tenant") == ["demo"]


async def test_silent_node_times_out_to_480_then_leaves_rotation(
    kamailio: KamailioFactory, tmp_path: Path
) -> None:
    silent = f"sip:{HOST}:{free_port()}"  # nobody listens there
    edge = kamailio([silent], DS_PING_INTERVAL=60)  # no probe before the calls
    first = await run_sipp("uac_refused.xml", edge.address, tmp_path / "first")
    assert first.returncode == 0, first.explain()
    assert first.statuses()[-1] == 480  # tried, no answer within FR_TIMER
    assert (await edge.node_flags())[silent].startswith("I")
    second = await run_sipp("uac_refused.xml", edge.address, tmp_path / "second")
    assert second.statuses()[-1] == 503  # no node left in rotation


async def test_malformed_request_gets_400(kamailio: KamailioFactory) -> None:
    edge = kamailio([])
    status = await asyncio.to_thread(sip_options, edge.port, 1.0, "x1 OPTIONS")
    assert status == 400


async def test_flood_from_one_address_trips_pike(kamailio: KamailioFactory) -> None:
    edge = kamailio([], PIKE_DENSITY=5, PIKE_UNIT=2)
    answered = await asyncio.to_thread(flood, edge.port, 40)
    assert 0 < answered < 40
    assert "pike blocking" in edge.daemon.log(500)
    # banned: even a polite single request from that address is ignored now
    assert await asyncio.to_thread(sip_options, edge.port, 0.5) is None


def flood(port: int, count: int) -> int:
    """Send ``count`` OPTIONS back to back from one socket; how many were answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        for i in range(count):
            sock.sendto(options_request(port, local, f"flood{i}").encode(), (HOST, port))
        sock.settimeout(0.5)
        answered: set[bytes] = set()
        with contextlib.suppress(TimeoutError):
            while len(answered) < count:
                answered.add(re.findall(rb"Call-ID: (\S+)", sock.recv(65535))[0])
    return len(answered)
