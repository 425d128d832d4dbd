"""A WebRTC call against a real aiortc peer on loopback: answer, audio, signals, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from config import ConfigError, load_settings
from media.call import CallControlError, CallInfo, Direction, Dtmf, RemoteHangup
from media.clock import VirtualClock
from media.frames import AudioFrame
from media.webrtc import HANGUP_GRACE_S, SdpError, WebRtcCall, WebRtcOptions, answer_offer
from media.webrtc_sdp import check_offer, ice_host_addresses, is_loopback, keep_candidates
from tests.support.webrtc_peer import LOOPBACK, TestPeer

INFO = CallInfo(call_id="c1", tenant_id="t1", direction=Direction.INBOUND, transport="webrtc")
OPTIONS = WebRtcOptions(host_addresses=LOOPBACK)


def tone(seconds: float = 1.0) -> np.ndarray:  # type: ignore[type-arg]
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)


@pytest.fixture
async def peer() -> AsyncIterator[TestPeer]:
    p = TestPeer(tone())
    try:
        yield p
    finally:
        await p.close()


async def connect(peer: TestPeer, options: WebRtcOptions = OPTIONS) -> WebRtcCall:
    offer = await peer.offer()
    call = await answer_offer(offer["sdp"], INFO, options)
    await peer.accept(call.answer_sdp)
    await peer.wait_state("connected")
    return call


async def echo(call: WebRtcCall, frames: int) -> int:
    n = 0
    async for frame in call.transport.source.frames():
        await call.transport.sink.write(frame)
        n += 1
        if n == frames:
            break
    return n


async def test_audio_both_ways_and_hangup_closes_everything(peer: TestPeer) -> None:
    call = await connect(peer)
    try:
        assert await asyncio.wait_for(echo(call, 60), 10) == 60
        await peer.wait_audio(
            lambda a: len(a) > 8000 and np.sqrt(np.mean(a[-8000:].astype(float) ** 2)) > 2000
        )
        assert call.transport.sink.played_until > 0
        with pytest.raises(CallControlError):
            await call.transfer("sip:elsewhere")
    finally:
        await call.hangup()
    # the audio ends at once: the inbound iterator has ended, writes return at once
    assert [f async for f in call.transport.source.frames()] == []
    await asyncio.wait_for(call.transport.sink.write(AudioFrame.silence()), 1)
    await call.transport.close()  # the owner closes: everything
    assert call.closed
    await peer.wait_state("closed", "failed", limit_s=10)
    await call.transport.close()  # idempotent


@pytest.mark.parametrize(
    ("codec", "rate", "channels"), [("audio/opus", 48000, 2), ("audio/PCMU", 8000, 1)]
)
async def test_the_agent_track_speaks_the_negotiated_encoders_format(
    codec: str, rate: int, channels: int
) -> None:
    peer = TestPeer(tone(), codecs=(codec,))
    try:
        call = await connect(peer)
        try:
            track = call.transport.sink.track
            assert (track.rate, track.channels) == (rate, channels)
            assert await asyncio.wait_for(echo(call, 40), 10) == 40
            await peer.wait_audio(
                lambda a: len(a) > 4000 and np.sqrt(np.mean(a[-4000:].astype(float) ** 2)) > 2000
            )
        finally:
            await call.close()
    finally:
        await peer.close()


async def test_events_sent_after_hangup_reach_the_peer_before_close(peer: TestPeer) -> None:
    call = await connect(peer)
    await asyncio.wait_for(peer.channel_open.wait(), 10)
    await call.hangup("completed")
    assert not call.closed
    for k in range(20):  # the call's last events (its outcome), published after the hangup
        call.send_message(f'{{"type": "last", "k": {k}, "pad": "{"x" * 500}"}}')
    await call.close("completed")
    assert call.closed
    await peer.wait_message(lambda m: m.get("k") == 19, limit_s=5)
    assert [m["k"] for m in peer.messages if m.get("type") == "last"] == list(range(20))
    await peer.wait_state("closed", "failed", limit_s=10)


async def test_a_hung_up_call_closes_after_the_grace_period(peer: TestPeer) -> None:
    clock = VirtualClock()
    offer = await peer.offer()
    call = await answer_offer(offer["sdp"], INFO, OPTIONS, clock)
    try:
        await peer.accept(call.answer_sdp)
        await peer.wait_state("connected")
        await call.hangup()
        await call.hangup()  # idempotent
        await clock.advance(HANGUP_GRACE_S - 0.1)
        assert not call.closed
        await clock.advance(0.2)
        await asyncio.wait_for(call.wait_closed(), 5)
        await peer.wait_state("closed", "failed", limit_s=10)
    finally:
        await call.close()


async def test_peer_closing_ends_inbound_and_signals_remote_hangup(peer: TestPeer) -> None:
    call = await connect(peer)
    await peer.close()
    signal = await asyncio.wait_for(call.next_signal(), 10)
    assert isinstance(signal, RemoteHangup)
    await asyncio.wait_for(call.wait_closed(), 10)
    async with asyncio.timeout(5):  # the inbound iterator ends
        async for _ in call.transport.source.frames():
            pass


async def test_no_connection_within_the_timeout_closes_the_call(peer: TestPeer) -> None:
    offer = await peer.offer()
    options = WebRtcOptions(host_addresses=LOOPBACK, connect_timeout_s=0.3)
    call = await answer_offer(offer["sdp"], INFO, options)
    signal = await asyncio.wait_for(call.next_signal(), 10)
    assert signal == RemoteHangup("connect timeout")
    await asyncio.wait_for(call.wait_closed(), 10)


async def test_events_sent_before_the_channel_opens_are_delivered_in_order(peer: TestPeer) -> None:
    offer = await peer.offer()
    call = await answer_offer(offer["sdp"], INFO, OPTIONS)
    try:
        for k in range(3):
            call.send_message(f'{{"type": "n", "k": {k}}}')
        await peer.accept(call.answer_sdp)
        await peer.wait_message(lambda m: m.get("k") == 2)
        call.send_message('{"type": "after"}')
        await peer.wait_message(lambda m: m.get("type") == "after")
        assert [m.get("k") for m in peer.messages] == [0, 1, 2, None]
    finally:
        await call.close()


async def test_dtmf_from_the_data_channel_becomes_signals(peer: TestPeer) -> None:
    call = await connect(peer)
    try:
        await asyncio.wait_for(peer.channel_open.wait(), 10)
        peer.channel.send("not json")
        peer.channel.send('{"type": "dtmf", "digits": "1x"}')
        peer.channel.send('{"type": "dtmf", "digits": "4#"}')
        got = [await asyncio.wait_for(call.next_signal(), 10) for _ in range(2)]
        assert got == [Dtmf("4"), Dtmf("#")]
        await call.send_dtmf("9")
        msg = await peer.wait_message(lambda m: m.get("type") == "dtmf_sent")
        assert msg["digits"] == "9"
    finally:
        await call.close()


async def test_a_bad_offer_raises_sdp_error_and_leaves_no_task() -> None:
    before = len(asyncio.all_tasks())
    with pytest.raises(SdpError, match="no audio m-line"):
        await answer_offer("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", INFO, OPTIONS)
    assert len(asyncio.all_tasks()) == before


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("a=rtcp-mux\r\n", "", "RTCP mux is not enabled"),  # found by aiortc
        ("a=mid:0\r\n", "", "no media id"),
        ("a=mid:1\r\n", "a=mid:0\r\n", "repeats the media id a=mid:0"),
        ("a=setup:actpass", "a=setup:bogus", "cannot be parsed"),
    ],
)
async def test_offers_aiortc_cannot_take_are_sdp_errors(
    peer: TestPeer, old: str, new: str, problem: str
) -> None:
    offer = (await peer.offer())["sdp"]
    assert old in offer
    before = len(asyncio.all_tasks())
    with pytest.raises(SdpError, match=problem):
        await answer_offer(offer.replace(old, new), INFO, OPTIONS)
    assert len(asyncio.all_tasks()) == before


def test_check_offer_accepts_a_browser_style_offer() -> None:
    offer = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n"
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n"
    )
    check_offer(offer)
    g722 = offer.replace("111 0", "9").replace(
        "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000", "a=rtpmap:9 G722/8000"
    )
    with pytest.raises(SdpError, match=r"audio codecs \(audio/G722\)"):
        check_offer(g722)


def test_keep_candidates_filters_by_address() -> None:
    sdp = (
        "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 192.0.2.2 5001 typ host\r\n"
        "a=candidate:3 1 udp 2130706431 abcd.local 5002 typ host\r\n"
        "a=candidate:4 1 udp 2130706431 ::1 5003 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    kept = keep_candidates(sdp, is_loopback)
    assert "127.0.0.1" in kept and "::1" in kept
    assert "192.0.2.2" not in kept and ".local" not in kept
    assert kept.startswith("m=audio") and kept.endswith("a=end-of-candidates\r\n")


def test_ice_host_addresses_is_scoped() -> None:
    import aioice.ice

    with ice_host_addresses(("127.0.0.1",)):
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)


def test_options_from_the_webrtc_settings(tmp_path: Path) -> None:
    default = WebRtcOptions.from_settings(load_settings(env={}).webrtc)
    assert default == WebRtcOptions()  # no host addresses: every interface but loopback
    config = tmp_path / "node.toml"
    config.write_text(
        "[webrtc]\n"
        'host_addresses = ["127.0.0.1", "::1"]\n'
        'stun_urls = ["stun:stun.example.org:3478"]\n'
        "connect_timeout_s = 5\n"
        "inbound_buffer_frames = 10\n"
        "outbound_buffer_frames = 12\n"
        "event_backlog = 7\n"
    )
    options = WebRtcOptions.from_settings(load_settings(config, env={}).webrtc)
    assert options == WebRtcOptions(
        host_addresses=("127.0.0.1", "::1"),
        stun_urls=("stun:stun.example.org:3478",),
        connect_timeout_s=5.0,
        inbound_buffer_frames=10,
        outbound_buffer_frames=12,
        event_backlog=7,
    )


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('host_addresses = ["localhost"]', "'localhost' is not an IP address"),
        ('stun_urls = ["http://x"]', "webrtc.stun_urls[0]"),
        ("connect_timeout_s = 0", "webrtc.connect_timeout_s"),
    ],
)
def test_bad_webrtc_settings_name_the_key(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f"[webrtc]\n{toml}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert expected in str(err.value)
