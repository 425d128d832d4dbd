"""Codec negotiation against real sipp: the node's answer to an offer, its own offer, and the
order of `sip.codecs`; then audio both ways in PCMA and G.722 with baresip.

The answer SDP is read from sipp's message log, so each test asserts on the exact `m=audio`
line and rtpmaps the node sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from media.call import Direction
from media.g711 import alaw_decode
from sip.sdp import prefer_local_codec
from sip.ua import UserAgent
from tests.support.baresip import baresip
from tests.support.ports import free_port
from tests.support.sipp import RtpTap, SippResult, listening_sipp, run_sipp
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored, tone_speech

pytestmark = pytest.mark.timeout(60)

RTPMAP = {"0": "PCMU/8000", "8": "PCMA/8000", "9": "G722/8000", "3": "GSM/8000", "18": "G729/8000"}


def offer(*payloads: str, dtmf: bool = True) -> dict[str, str]:
    """The `@PAYLOADS@`/`@RTPMAPS@` fill for an offer of `payloads` (+ telephone-event 101)."""
    pts = [*payloads, "101"] if dtmf else list(payloads)
    maps = [f"      a=rtpmap:{pt} {RTPMAP[pt]}" for pt in payloads]
    if dtmf:
        maps += ["      a=rtpmap:101 telephone-event/8000", "      a=fmtp:101 0-16"]
    return {"PAYLOADS": " ".join(pts), "RTPMAPS": "\n".join(maps)}


async def answered(ua: UserAgent, tmp: Path, *payloads: str) -> SippResult:
    result = await run_sipp(
        "uac_offer.xml", ua.port, tmp, fill={**offer(*payloads), "HOLD_MS": "300"}
    )
    assert result.returncode == 0, result.explain()
    return result


def answer_codecs(result: SippResult) -> list[str]:
    """The codecs of the node's 200 OK answer, telephone-event left out, in order."""
    (ok,) = result.received("SIP/2.0 200 OK")[:1]
    maps = ok.rtpmaps()
    return [maps.get(pt, pt) for pt in ok.sdp_audio() if "telephone-event" not in maps.get(pt, "")]


@pytest.mark.parametrize(
    ("codecs", "offered", "expected"),
    [
        (["PCMU", "PCMA", "G722"], ["8"], ["PCMA/8000"]),
        (["PCMU", "PCMA", "G722"], ["0"], ["PCMU/8000"]),
        (["PCMU", "PCMA", "G722"], ["9"], ["G722/8000"]),
        (["G722", "PCMA"], ["9", "8"], ["G722/8000"]),
        # The node's preference wins over the caller's order.
        (["PCMA", "PCMU"], ["0", "8"], ["PCMA/8000"]),
        (["G722", "PCMU"], ["0", "9"], ["G722/8000"]),
        (["PCMU", "G722"], ["9", "0"], ["PCMU/8000"]),
    ],
)
async def test_the_answer_picks_the_configured_codec(
    codecs: list[str], offered: list[str], expected: list[str], tmp_path: Path
) -> None:
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(sip_settings(codecs=codecs), host) as ua,  # type: ignore[arg-type]
    ):
        assert ua is not None
        result = await answered(ua, tmp_path, *offered)
        assert answer_codecs(result) == expected
        ok = result.received("SIP/2.0 200 OK")[0]
        assert "telephone-event/8000" in ok.rtpmaps().values()  # DTMF was offered: kept
        await asyncio.wait_for(host.finished.get(), 5)
        await asyncio.wait_for(host.wait_idle(), 5)  # every call released


@pytest.mark.parametrize(
    ("codecs", "offered"),
    [
        (["PCMU", "PCMA", "G722"], ["18"]),  # G.729: never supported
        (["PCMU", "PCMA", "G722"], ["3"]),  # GSM: pjsua2 has it, the node does not offer it
        (["PCMA"], ["0"]),  # PCMU: supported, but not configured
        (["PCMU", "PCMA"], ["9"]),
    ],
)
async def test_an_offer_without_a_configured_codec_gets_488(
    codecs: list[str], offered: list[str], tmp_path: Path
) -> None:
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(sip_settings(codecs=codecs), host) as ua,  # type: ignore[arg-type]
    ):
        assert ua is not None
        result = await run_sipp(
            "uac_offer_refused.xml", ua.port, tmp_path, fill={**offer(*offered), "STATUS": "488"}
        )
        assert result.returncode == 0, result.explain()
        assert result.received("SIP/2.0 488")
        assert host.started.empty()
        await asyncio.wait_for(host.wait_idle(), 5)  # every call released
        assert await ua.call_count() == 0


async def test_the_node_offers_its_codecs_in_the_configured_order(tmp_path: Path) -> None:
    """An outbound INVITE's SDP lists exactly `sip.codecs`, in that order, plus DTMF."""
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(sip_settings(codecs=["G722", "PCMA", "PCMU"]), host) as ua,  # type: ignore[arg-type]
    ):
        assert ua is not None
        uas_port = free_port()
        uas = await listening_sipp("uas", uas_port, tmp_path, timeout_s=15)
        await host.dialers["sip"].dial(
            call_id="out1", tenant_id="demo", agent="receptionist",
            to=f"sip:agent@127.0.0.1:{uas_port}",
        )  # fmt: skip
        info = await asyncio.wait_for(host.started.get(), 10)
        assert info.direction == Direction.OUTBOUND
        await host.calls_seen[-1].hangup()
        await asyncio.wait_for(host.finished.get(), 5)
        result = await uas
        assert result.returncode == 0, result.explain()
        (invite,) = result.received("INVITE ")
        maps = invite.rtpmaps()
        names = [maps[pt] for pt in invite.sdp_audio()]
        assert names[:3] == ["G722/8000", "PCMA/8000", "PCMU/8000"]
        assert [n for n in names[3:] if not n.startswith("telephone-event/")] == []


@pytest.mark.parametrize(("codec", "payload_type"), [("PCMA", 8), ("G722", 9)])
async def test_audio_flows_both_ways_in_the_negotiated_codec(
    codec: str, payload_type: int, tmp_path: Path
) -> None:
    """The node calls baresip with `sip.codecs = [codec]`: its RTP to baresip is that codec
    (tapped; PCMA decoded back to speech-level audio), and baresip's tone, decoded by the
    node, reaches the call."""
    host = SignalHost(max_calls=2)
    host.announce = tone_speech(2.0)
    async with (
        stored(host),
        sip_listener(sip_settings(codecs=[codec]), host) as ua,  # type: ignore[arg-type]
        baresip(tmp_path / "baresip", g722=codec == "G722") as peer,
    ):
        assert ua is not None
        with RtpTap(peer.rtp_port) as tap:
            await host.dialers["sip"].dial(
                call_id="codec1", tenant_id="demo", agent="receptionist", to=peer.uri
            )
            await asyncio.wait_for(host.started.get(), 10)
            await asyncio.wait_for(host.heard_loud.wait(), 10)  # 1 s of baresip's tone
            await host.calls_seen[-1].hangup()
            await asyncio.wait_for(host.finished.get(), 5)
        await peer.wait_event("CALL_CLOSED")
    audio = [p for p in tap.packets if len(p) > 12 and p[1] & 0x7F < 96]
    assert len(audio) >= 50 and {p[1] & 0x7F for p in audio} == {payload_type}
    assert {len(p) - 12 for p in audio} == {160}  # 20 ms: 160 A-law bytes, 160 G.722 bytes
    if codec == "PCMA":
        samples = alaw_decode(b"".join(p[12:] for p in audio)).astype(np.float64)
        frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
        assert (np.sqrt((frames**2).mean(axis=1)) > 1000).sum() >= 50  # the announcement


LOCAL = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 8 0 9 120\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\n"
    "m=video 0 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n"
)


@pytest.mark.parametrize(
    ("remote_media", "kept"),
    [
        ("m=audio 5000 RTP/AVP 0 9 101\na=rtpmap:101 telephone-event/8000", "0 120"),
        ("m=audio 5000 RTP/AVP 9 8", "8 120"),  # static types need no rtpmap
        ("m=audio 5000 RTP/AVP 96\na=rtpmap:96 g722/8000", "9 120"),  # by name, any case
        ("m=audio 5000 RTP/AVP 18", "8 0 9 120"),  # nothing shared: unchanged, pjsua2 says 488
        ("m=video 5000 RTP/AVP 31", "8 0 9 120"),  # no audio offered: unchanged
    ],
)
def test_the_answer_sdp_keeps_the_preferred_shared_codec(remote_media: str, kept: str) -> None:
    remote = f"v=0\no=x 1 1 IN IP4 127.0.0.1\ns=-\nt=0 0\n{remote_media}\n"
    out = prefer_local_codec(LOCAL, remote)
    lines = out.split("\r\n")
    assert f"m=audio 4000 RTP/AVP {kept}" in lines
    maps = [line.split(":")[1].split()[0] for line in lines if line.startswith("a=rtpmap:")]
    assert maps == [*kept.split(), "31"]  # rtpmaps of dropped formats go; video untouched
    assert "a=fmtp:120 0-16" in lines and lines[-2:] == ["a=rtpmap:31 H261/90000", ""]
