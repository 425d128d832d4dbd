"""The bench's caller legs: their sans-IO parts (RTP, SDP edit, codecs, the outbound track,
arrival bookkeeping), and calls against the real node (embedded models, the demo receptionist).

WebRTC: the leg calls the receptionist, hears the greeting, says a line in the caller voice and
hears the reply; what it received transcribes back. SIP: the leg runs in a child process
(`python -m bench.wire.sip_leg`), because pjsua2 allows one Endpoint per process and the node
under test holds this one's; it calls the node's SIP listener and writes what it heard.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.codecs import get_encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from bench.wire import rtp_socket, webrtc_leg
from bench.wire.caller import frame_pcm
from bench.wire.leg import SAMPLE_RATE, LegTarget, open_transport
from bench.wire.resampling import MonoResampler
from bench.wire.rtp_socket import RtpSocket
from bench.wire.sip_rtp import (
    CODECS,
    RtpDecoder,
    RtpEncoder,
    RtpPacket,
    codec_named,
    move_audio,
    split_address,
)
from bench.wire.webrtc_leg import CODECS as CODECS_WEBRTC
from bench.wire.webrtc_leg import CallerTrack, RtpArrivals, WebRtcLeg, ice_addresses
from media.wav import read_wav, write_wav
from pipeline.engines import Engines
from pipeline.events import CallEnded, CallEvent, Transcript
from pipeline.tts import TtsEngine
from tests.support.speech import transcribe, words
from voicenode.simulate import caller_voice

from .legs_node import Heard, LegNode, rms, serve_leg_node, speaking

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
LINE = "Hi, I'd like to book a cleaning."
GREETING_WORDS = {"bright", "smile", "dental"}
"""From the greeting "... Bright Smile Dental ...": Whisper tiny misses one now and then
("bentle"), more so on a loaded machine, so the received audio must give two of them."""
REPLY_WORDS = {"sure", "help", "book", "cleaning", "name"}
"""The receptionist's answer to LINE: "Sure, I can help you book a cleaning. Can I have your
name, please?" (config/agents/receptionist.toml)."""


# ---- sans-IO parts --------------------------------------------------------------------------


def tone(seconds: float, rate: int = SAMPLE_RATE, hz: float = 440.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def test_an_rtp_packet_round_trips_and_skips_csrcs_extension_and_padding() -> None:
    packet = RtpPacket(
        payload_type=0, sequence=65535, timestamp=2**32 - 1, ssrc=7, payload=b"abc", marker=True
    )
    data = bytes(packet)
    assert data[:2] == b"\x80\x80" and len(data) == 15
    assert RtpPacket.parse(data) == packet
    # CSRC count 1, extension (1 word), padding of 2: the payload is what is left.
    head = bytes([0x80 | 0x20 | 0x10 | 1, 9]) + (5).to_bytes(2, "big") + bytes(8)
    extended = head + bytes(4) + b"\xbe\xde\x00\x01" + bytes(4) + b"pay" + b"\x00\x02"
    parsed = RtpPacket.parse(extended)
    assert (parsed.payload_type, parsed.sequence, parsed.payload) == (9, 5, b"pay")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00", "at least 12 bytes"),
        (bytes([0x40]) + bytes(11), "version 1"),
        (bytes([0x8F]) + bytes(11), "runs past"),
        (bytes([0x90]) + bytes(11) + b"\x00", "cut short"),
    ],
)
def test_a_malformed_rtp_packet_is_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RtpPacket.parse(data)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_each_sip_codec_carries_20_ms_of_audio_per_packet_both_ways(name: str) -> None:
    codec = codec_named(name.lower())
    encoder = RtpEncoder(codec, ssrc=99, sequence=65534, timestamp=2**32 - 160)
    decoder = RtpDecoder(codec)
    sent = tone(0.4)
    packets = [RtpPacket.parse(encoder.encode(f)) for f in frame_pcm(sent)]
    assert [p.sequence for p in packets[:3]] == [65534, 65535, 0]
    assert [p.timestamp for p in packets[:3]] == [2**32 - 160, 0, 160]
    assert packets[0].marker and not packets[1].marker
    assert {p.payload_type for p in packets} == {codec.payload_type}
    assert {len(p.payload) for p in packets} == {160}  # 8 kHz G.711, 64 kbit/s G.722
    heard = np.frombuffer(b"".join(decoder.decode(p.payload) for p in packets), dtype="<i2")
    assert abs(len(heard) - len(sent)) <= 2 * SAMPLE_RATE // 1000
    # The tone comes back at its level (companding and the codecs' delay aside).
    assert 0.8 < rms(heard[1600:]) / rms(sent[1600:]) < 1.2


def test_an_unknown_sip_codec_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="'opus'.*G722"):
        codec_named("opus")


def test_the_offer_is_pointed_at_the_legs_rtp_socket() -> None:
    offer = (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=pjmedia\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0 121\r\nc=IN IP4 192.0.2.2\r\na=rtcp:4001 IN IP4 192.0.2.2\r\n"
        "a=sendrecv\r\na=rtpmap:0 PCMU/8000\r\nm=video 4002 RTP/AVP 96\r\na=rtcp:4003\r\n"
    )
    moved = move_audio(offer, "127.0.0.1", 40000)
    assert "m=audio 40000 RTP/AVP 0 121\r\n" in moved
    assert moved.count("c=IN IP4 127.0.0.1\r\n") == 2 and "192.0.2.2\r\nt=" not in moved
    assert "a=rtcp:4001" not in moved and "a=rtcp:4003" in moved  # only the audio's
    assert "o=- 1 1 IN IP4 192.0.2.2" in moved and "m=video 4002" in moved
    assert "c=IN IP6 ::1\r\n" in move_audio(offer, "::1", 40000)


def test_remote_rtp_addresses_are_split_into_host_and_port() -> None:
    assert split_address("127.0.0.1:4002") == ("127.0.0.1", 4002)
    assert split_address("[::1]:4002") == ("::1", 4002)
    with pytest.raises(ValueError, match="host:port"):
        split_address("127.0.0.1")


def test_ice_candidates_stay_on_loopback_for_a_loopback_node() -> None:
    assert ice_addresses("http://127.0.0.1:8080") == ("127.0.0.1",)
    assert ice_addresses("http://localhost:8080") == ("127.0.0.1",)
    assert ice_addresses("https://node.example.com") is None
    assert ice_addresses("http://10.1.2.3:8080") is None


def test_decoded_frames_are_credited_to_their_packets_arrival() -> None:
    arrivals = RtpArrivals()
    origin = 2**32 - 960  # the stream's first timestamp, just before the wrap
    for k in range(4):
        arrivals.note((origin + 960 * k) & 0xFFFFFFFF, 10.0 + 0.02 * k)
    # aiortc rebases a decoded frame's pts to the first timestamp: 0, 960, 1920, ...
    assert arrivals.pop(960) == pytest.approx(10.02)
    assert arrivals.pop(1920) == pytest.approx(10.04)  # across the 32-bit wrap
    assert arrivals.pop(960) is None  # each arrival is used once
    assert arrivals.pop(None) is None


def test_a_16_khz_stream_is_resampled_without_holding_audio_back() -> None:
    to16k = MonoResampler(SAMPLE_RATE)
    impulse = np.zeros(48_000 // 50 * 5, dtype=np.int16)
    impulse[960 * 2] = 20_000  # at the start of the third 20 ms frame
    out = []
    for k in range(5):
        chunk = np.repeat(impulse[k * 960 : (k + 1) * 960], 2)  # stereo, interleaved
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = k * 960
        out.append(np.frombuffer(to16k.convert(frame), dtype="<i2"))
    assert [len(o) for o in out[1:]] == [320] * 4  # every frame's worth comes out at once
    peak = int(np.argmax(np.abs(np.concatenate(out))))
    assert peak == 640  # sample-aligned with the input: no delay beyond the first frame's


class VirtualMonotonic:
    """Stands in for the `time` module in `bench.wire.webrtc_leg`: `monotonic()` is `now`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def without_waiting(step: Coroutine[Any, Any, av.AudioFrame]) -> av.AudioFrame:
    """The coroutine's result if it finishes without once yielding to the event loop."""
    try:
        step.send(None)
    except StopIteration as done:
        frame: av.AudioFrame = done.value
        return frame
    step.close()
    raise AssertionError("it waited")


async def test_the_caller_track_sends_pushed_frames_at_once_and_silence_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The track's pacing runs on a virtual monotonic clock: no assertion depends on how fast
    # this machine is.
    clock = VirtualMonotonic(100.0)
    monkeypatch.setattr(webrtc_leg, "time", clock)
    track = CallerTrack()
    loud = tone(0.02).astype("<i2").tobytes()
    first = await track.recv()  # nothing pushed: silence once its slot (+1 frame) has passed
    track.push(loud)
    second = without_waiting(track.recv())  # a pushed frame does not wait for a slot
    clock.now += 0.04  # the pacer is a frame late: silence fills the slot, no time waited
    late = asyncio.ensure_future(track.recv())
    for _ in range(5):  # a few turns of the event loop, none of them a timer
        await asyncio.sleep(0)
    assert late.done()
    third = late.result()
    clock.now = 0.0  # long before the next slot: a frame pushed meanwhile goes out in it
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert not waiting.done()
    track.push(loud)
    fourth = await waiting
    frames = (first, second, third, fourth)
    assert [f.pts for f in frames] == [0, 320, 640, 960]
    assert {f.sample_rate for f in frames} == {SAMPLE_RATE}
    assert rms(first.to_ndarray()[0]) == 0 and rms(third.to_ndarray()[0]) == 0
    assert second.to_ndarray()[0].tobytes() == loud == fourth.to_ndarray()[0].tobytes()
    with pytest.raises(ValueError, match="640 bytes"):
        track.push(b"short")
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_opus_frames_leave_in_the_encoders_format_and_are_encoded_at_once() -> None:
    opus = CODECS_WEBRTC["opus"]
    track = CallerTrack(opus.rate, opus.channels)
    encoder = get_encoder(
        RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=111)
    )
    sent = tone(0.1)
    packets = []
    for pcm in frame_pcm(sent):
        track.push(pcm)
        frame = await track.recv()
        assert (frame.sample_rate, frame.samples, frame.layout.name) == (48_000, 960, "stereo")
        payloads, _ = encoder.encode(frame)
        packets.append(len(payloads))
    # One packet per frame from the first one on: nothing is held back in the encoder.
    assert packets == [1, 1, 1, 1, 1]
    track.stop()


async def test_the_rtp_socket_stamps_datagrams_with_the_kernels_receive_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel's realtime stamp is turned into monotonic terms with the clocks' offset.
    monkeypatch.setattr(rtp_socket, "_realtime_offset", lambda: 1_000_000.0)
    stamp = rtp_socket._TIMESPEC.pack(1_000_123, 456_000_000)
    at = rtp_socket._arrival([(socket.SOL_SOCKET, rtp_socket.SO_TIMESTAMPNS, stamp)])
    assert at == pytest.approx(123.456, abs=1e-9)
    # A real datagram arrives with that stamp attached (no fallback to the time of reading).
    seen: list[list[tuple[int, int, bytes]]] = []
    real_arrival = rtp_socket._arrival

    def arrival(ancdata: list[tuple[int, int, bytes]]) -> float:
        seen.append(ancdata)
        return real_arrival(ancdata)

    monkeypatch.setattr(rtp_socket, "_arrival", arrival)
    got: list[tuple[float, bytes, tuple[str, int]]] = []
    arrived = asyncio.Event()

    def on_datagram(at: float, data: bytes, source: tuple[str, int]) -> None:
        got.append((at, data, source))
        arrived.set()

    rtp = RtpSocket("127.0.0.1", on_datagram)
    try:
        assert rtp.kernel_stamps  # Linux
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.sendto(b"one", rtp.address)
            async with asyncio.timeout(5):
                await arrived.wait()
            ((_, data, source),) = got
            assert data == b"one" and source == peer.getsockname()
            ((kinds),) = [[(level, kind) for level, kind, _ in anc] for anc in seen]
            assert (socket.SOL_SOCKET, rtp_socket.SO_TIMESTAMPNS) in kinds
    finally:
        rtp.close()


@pytest.fixture
async def node(tmp_path: Path, engines: Engines) -> AsyncIterator[LegNode]:
    async with serve_leg_node(tmp_path / "node", engines) as n:
        yield n


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["opus", "pcmu"])
async def test_a_webrtc_leg_call_to_the_receptionist(node: LegNode, codec: str) -> None:
    tts = node.engines.tts
    assert isinstance(tts, TtsEngine)
    line = caller_voice(tts, LINE)
    heard = Heard()
    open_leg = open_transport("webrtc")
    async with open_leg(node.target, heard.on_audio, codec=codec) as leg:  # type: ignore[call-arg]
        assert isinstance(leg, WebRtcLeg)
        answered = time.monotonic()
        assert leg.call_id is not None and len(leg.call_id) == 32
        assert node.node.active_calls() == 1
        async with speaking(leg) as mouth:
            await heard.wait(lambda: heard.spoke_and_stopped(answered), "greeting", 25)
            greeting_at = heard.speech_onset(answered)
            assert greeting_at is not None
            greeting = heard.audio(answered)
            mouth.say(line)
            await mouth.said.wait()
            spoke_at = mouth.last_sent
            await heard.wait(lambda: heard.spoke_and_stopped(spoke_at), "reply", 25)
            reply_at = heard.speech_onset(spoke_at)
            assert reply_at is not None
            reply = heard.audio(spoke_at)
        await leg.hangup()
        assert leg.closed.is_set()
    await node.node.wait_idle()
    assert node.node.active_calls() == 0

    # Every received frame was credited to its RTP packet's arrival, not to aiortc's jitter
    # buffer hand-over. (How evenly packets came is timing: reported below, not asserted.)
    assert leg.frames_received > 100 and leg.late_arrivals <= 1, leg.late_arrivals
    times = np.array([at for at, _ in heard.packets])
    gaps_ms = np.diff(times) * 1000
    samples = sum(len(pcm) for _, pcm in heard.packets) // 2

    # What the agent said (its transcript event) is what the leg heard.
    greeting_text = next(
        e["text"]
        for e in leg.events
        if e.get("type") == "transcript" and e["role"] == "agent" and e["turn"] == 0
    )
    assert "bright smile dental" in greeting_text.lower(), greeting_text
    said = words(await transcribe(node.engines, greeting[: 12 * SAMPLE_RATE]))
    assert len(said & GREETING_WORDS) >= 2, said
    answer = words(await transcribe(node.engines, reply[: 12 * SAMPLE_RATE]))
    assert len(answer & REPLY_WORDS) >= 3, answer
    # The node's own view: the caller's line was transcribed, the call ended by the hangup.
    finals = [e for e in leg.events if e.get("type") == "transcript" and e.get("final")]
    assert any({"book", "cleaning"} <= words(e["text"]) for e in finals if e["role"] == "user")
    print(
        f"webrtc leg ({codec}): greeting {(greeting_at - answered) * 1000:.0f} ms after connect,"
        f" reply {(reply_at - spoke_at) * 1000:.0f} ms after the line's last frame;"
        f" packet gaps p50 {np.percentile(gaps_ms, 50):.1f} ms"
        f" p99 {np.percentile(gaps_ms, 99):.1f} ms max {gaps_ms.max():.1f} ms;"
        f" {samples / SAMPLE_RATE:.2f} s of audio over {times[-1] - times[0]:.2f} s"
    )


@pytest.mark.slow
async def test_the_node_ending_a_webrtc_call_closes_the_leg(node: LegNode) -> None:
    tts = node.engines.tts
    assert isinstance(tts, TtsEngine)
    heard = Heard()
    async with open_transport("webrtc")(node.target, heard.on_audio) as leg:
        assert isinstance(leg, WebRtcLeg)
        answered = time.monotonic()
        async with speaking(leg) as mouth:
            await heard.wait(lambda: heard.spoke_and_stopped(answered), "greeting", 25)
            mouth.say(caller_voice(tts, "No thank you, goodbye."))
            async with asyncio.timeout(30):
                await leg.closed.wait()  # the agent says goodbye and ends the call
        ended = [e for e in leg.events if e.get("type") == "ended"]
        assert [e["reason"] for e in ended] == ["completed"], leg.events
    await node.node.wait_idle()
    assert node.node.active_calls() == 0


async def run_sip_leg(target: LegTarget, *args: str) -> dict[str, Any]:
    """`python -m bench.wire.sip_leg` against `target` (a child process: this one holds the
    node's pjsua2 Endpoint); its JSON summary."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.wire.sip_leg",
        "--host",
        target.sip_host,
        "--port",
        str(target.sip_port),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = out.decode().strip().splitlines()
    assert lines, f"no output (exit {proc.returncode}): {err.decode()[-2000:]}"
    summary: dict[str, Any] = json.loads(lines[-1])
    summary["exit"] = proc.returncode
    return summary


@pytest.mark.slow
async def test_a_sip_leg_call_to_the_receptionist(node: LegNode, tmp_path: Path) -> None:
    codec = "PCMU"
    tts = node.engines.tts
    assert isinstance(tts, TtsEngine)
    wav = tmp_path / "line.wav"
    write_wav(wav, caller_voice(tts, LINE))
    events: list[CallEvent] = []
    node.node.calls.subscribe(lambda info, event: events.append(event))
    summary = await run_sip_leg(
        node.target, "--codec", codec, "--wav", str(wav), "--out", str(tmp_path / "out")
    )
    assert summary["exit"] == 0, summary
    await node.node.wait_idle()
    assert node.node.active_calls() == 0
    # The SIP Call-ID, the caller hung up after the reply (BYE answered 200).
    assert isinstance(summary["call_id"], str) and len(summary["call_id"]) >= 16, summary
    assert summary["ended_by"] == "caller" and summary["end_status"] == 200, summary
    assert any(isinstance(e, CallEnded) and e.reason == "hangup" for e in events), events
    # Every packet was stamped by the kernel and held 20 ms. (Packet gaps, the time to the
    # greeting and voice-to-voice are timing: reported below, not asserted.)
    assert summary["codec"] == codec and summary["kernel_stamps"] is True
    assert summary["packets_dropped"] == 0
    assert summary["samples_per_packet"]["max"] == 320, summary
    assert summary["samples_per_packet"]["min"] >= 280, summary  # the resampler's first frame
    assert abs(summary["packets"] * 0.02 - summary["heard_s"]) < 0.1, summary
    gaps = summary["gap_ms"]
    assert gaps is not None and 0 < gaps["n"] < summary["packets"], summary
    assert summary["greeting_ms"] is not None and summary["greeting_ms"] > 0, summary
    (v2v,) = summary["v2v_ms"]
    assert v2v is not None and v2v > 0, summary
    # The node heard the line; what the leg heard says the greeting and the reply.
    users = [e.text for e in events if isinstance(e, Transcript) and e.final and e.role == "user"]
    assert {"book", "cleaning"} <= words(" ".join(users)), users
    heard = read_wav(tmp_path / "out" / "heard.wav")
    assert len(heard) / SAMPLE_RATE == pytest.approx(summary["heard_s"], abs=0.01)
    said = words(await transcribe(node.engines, heard[: 28 * SAMPLE_RATE]))
    assert len(said & GREETING_WORDS) >= 2 and len(said & REPLY_WORDS) >= 3, said
    print(
        f"sip leg ({codec}): greeting {summary['greeting_ms']} ms after the answer,"
        f" voice-to-voice {v2v} ms; packet gaps p50 {gaps['p50']} ms p99 {gaps['p99']} ms"
        f" max {gaps['max']} ms over {gaps['n']} gaps"
    )


@pytest.mark.slow
async def test_a_sip_leg_to_an_unknown_number_fails_with_the_status(node: LegNode) -> None:
    summary = await run_sip_leg(node.target, "--number", "99999", "--timeout", "10")
    assert summary["exit"] == 1, summary
    assert "404" in summary["error"] and summary["refused"] is False, summary


@pytest.mark.slow
async def test_the_node_ending_a_sip_call_closes_the_leg(node: LegNode, tmp_path: Path) -> None:
    tts = node.engines.tts
    assert isinstance(tts, TtsEngine)
    wav = tmp_path / "bye.wav"
    write_wav(wav, caller_voice(tts, "No thank you, goodbye."))
    # The caller would hang up after 5 s of silence following the reply: the node is first.
    args = ("--codec", "G722", "--wav", str(wav), "--reply-gap", "5")
    summary = await run_sip_leg(node.target, *args)
    assert summary["exit"] == 0, summary
    # The node sent BYE: the leg was closed before the caller would have hung up.
    assert summary["ended_by"] == "agent" and summary["codec"] == "G722", summary
    assert summary["greeting_ms"] is not None and summary["packets"] > 100, summary
    await node.node.wait_idle()
    assert node.node.active_calls() == 0
