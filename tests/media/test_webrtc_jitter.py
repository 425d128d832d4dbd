"""The node's WebRTC receivers hand each inbound audio packet on as it arrives, not after
aiortc's prefetch; they never wait for a missing packet (the receiver could not catch up
afterwards); and a receiver laid out differently is left alone."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from media.webrtc_jitter import MAX_MISORDER, AudioJitterBuffer, without_playout_delay


def _packet(seq: int) -> RtpPacket:
    """A 20 ms PCMU packet, depayloaded the way the receiver leaves it for the buffer."""
    packet = RtpPacket(payload_type=0, sequence_number=seq & 0xFFFF, timestamp=seq * 160)
    packet._data = bytes([seq & 0xFF]) * 160  # type: ignore[attr-defined]
    return packet


def _released(buffer: Any, seqs: list[int]) -> list[int | None]:
    """For packets `seqs` in arrival order: the sequence number of the frame each let out."""
    out: list[int | None] = []
    for seq in seqs:
        _, frame = buffer.add(_packet(seq))
        out.append(None if frame is None else frame.timestamp // 160)
    return out


async def test_an_audio_receiver_releases_each_packet_as_it_arrives() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        stock = receiver._RTCRtpReceiver__jitter_buffer
        assert _released(stock, [0, 1, 2, 3, 4]) == [None, None, None, None, 0]  # aiortc's
        assert without_playout_delay(receiver)
        buffer = receiver._RTCRtpReceiver__jitter_buffer
        assert isinstance(buffer, AudioJitterBuffer)
        assert _released(buffer, [0, 1, 2, 3]) == [0, 1, 2, 3]  # frame n out with packet n
        _, frame = buffer.add(_packet(4))
        assert frame is not None and frame.data == bytes([4]) * 160
    finally:
        await pc.close()


def test_a_gap_is_skipped_at_once_and_a_late_packet_dropped() -> None:
    buffer = AudioJitterBuffer()
    # 3 lost, 6 comes after 7: no frame waits; 3 never comes, 6 is too late
    assert _released(buffer, [0, 1, 2, 4, 5, 7, 6, 8]) == [0, 1, 2, 4, 5, 7, None, 8]
    assert (buffer.released, buffer.skipped, buffer.late) == (7, 2, 1)


def test_a_repeated_packet_is_dropped() -> None:
    buffer = AudioJitterBuffer()
    assert _released(buffer, [10, 11, 11, 10, 12]) == [10, 11, None, None, 12]
    assert buffer.late == 2


def test_sequence_numbers_wrap_around() -> None:
    buffer = AudioJitterBuffer()
    seqs = [65533, 65534, 65535, 65536, 65537]  # 65536 goes out as 0
    assert _released(buffer, seqs) == seqs
    assert _released(buffer, [65535]) == [None]  # late, across the wrap
    assert buffer.skipped == 0


def test_a_new_sequence_far_behind_is_taken_as_the_next_packet() -> None:
    buffer = AudioJitterBuffer()
    assert _released(buffer, [5000, 5001]) == [5000, 5001]
    restart = 5001 - MAX_MISORDER - 50
    assert _released(buffer, [restart, restart + 1]) == [restart, restart + 1]
    assert buffer.late == 0


def test_a_receiver_without_the_expected_buffer_is_left_alone() -> None:
    class Other:
        _RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=128, is_video=True)

    other = Other()
    before = other._RTCRtpReceiver__jitter_buffer
    assert not without_playout_delay(other)  # a video buffer: not ours to change
    assert other._RTCRtpReceiver__jitter_buffer is before
    assert not without_playout_delay(object())
