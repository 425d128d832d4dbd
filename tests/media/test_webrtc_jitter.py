"""The node's WebRTC receivers hand each inbound audio frame on once it is complete, not after
aiortc's four-frame prefetch; and a receiver laid out differently is left alone."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from media.webrtc_jitter import without_playout_delay


def _packet(seq: int) -> RtpPacket:
    """A 20 ms PCMU packet, depayloaded the way the receiver leaves it for the buffer."""
    packet = RtpPacket(payload_type=0, sequence_number=seq, timestamp=seq * 160)
    packet._data = b"\xff" * 160  # type: ignore[attr-defined]
    return packet


def _released(buffer: Any, count: int) -> list[int | None]:
    """For packets 0..count-1 in order: the timestamp of the frame each one let out."""
    out: list[int | None] = []
    for seq in range(count):
        _, frame = buffer.add(_packet(seq))
        out.append(None if frame is None else frame.timestamp)
    return out


async def test_an_audio_receiver_releases_each_frame_when_the_next_packet_arrives() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        stock = receiver._RTCRtpReceiver__jitter_buffer
        assert _released(stock, 5) == [None, None, None, None, 0]  # aiortc's: frame 0 at packet 4
        assert without_playout_delay(receiver)
        buffer = receiver._RTCRtpReceiver__jitter_buffer
        assert _released(buffer, 4) == [None, 0, 160, 320]  # frame n out with packet n + 1
        # A missing packet is still waited for: nothing skips over the gap.
        assert buffer.add(_packet(5))[1] is None
        assert buffer.add(_packet(6))[1] is None
        assert buffer.add(_packet(4))[1] is not None
    finally:
        await pc.close()


def test_a_receiver_without_the_expected_buffer_is_left_alone() -> None:
    class Other:
        _RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=128, is_video=True)

    other = Other()
    before = other._RTCRtpReceiver__jitter_buffer
    assert not without_playout_delay(other)  # a video buffer: not ours to change
    assert other._RTCRtpReceiver__jitter_buffer is before
    assert not without_playout_delay(object())
