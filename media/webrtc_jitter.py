"""Inbound WebRTC audio without aiortc's playout delay.

aiortc's receiver keeps each audio packet in its jitter buffer until four later frames have
arrived (`JitterBuffer(capacity=16, prefetch=4)`): a fixed 80 ms, there so that a player gets
smooth audio. The node does not play the caller's audio; it runs VAD and speech recognition
on it, which only need the frames in order. Even aiortc's smallest prefetch keeps a frame
until the next packet shows it is complete: 20 ms on every frame, so the caller's last word
reached turn detection a frame late.

`AudioJitterBuffer` hands each packet on as it arrives: an audio RTP packet is a whole frame
(Opus and G.711 put one frame in one packet). The receiver takes at most one frame per packet
that arrives (`add` returns one), so a buffer that waited for a missing packet could never
catch up afterwards: every frame that came in meanwhile would stay queued, and delay every
later frame by as much, for the rest of the call (aiortc's own buffer waits out a lost packet
until 16 later ones have arrived: about 300 ms of delay from then on). So nothing waits here:
a packet that comes after a later one was handed on is dropped (a 20 ms gap for the
recognizer, which a lost packet leaves too), and a gap is skipped at once.

The buffer is aiortc's private state (`RTCRtpReceiver.__jitter_buffer`, aiortc 1.x); where an
aiortc version lays it out differently nothing is changed and the call works as it would
have, with the extra delay.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

log = logging.getLogger(__name__)

_ATTRIBUTE: Final = "_RTCRtpReceiver__jitter_buffer"
MAX_MISORDER: Final = 100
"""A packet up to this many sequence numbers behind the last one handed on is late (dropped);
further behind, the sender started a new sequence and it is taken as the next packet."""


class AudioJitterBuffer(JitterBuffer):
    """Hands each audio packet on at once, in order; late packets are dropped (see the module).

    `released` counts the frames handed on, `late` the packets dropped as late or repeated,
    `skipped` the sequence numbers never seen (lost, or late and dropped when they came)."""

    def __init__(self, capacity: int = 16) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=False)
        self._next: int | None = None
        self.released = 0
        self.late = 0
        self.skipped = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._next is not None and seq != self._next:
            behind = uint16_add(self._next, -seq)
            if 0 < behind <= MAX_MISORDER:
                self.late += 1
                return False, None
            ahead = uint16_add(seq, -self._next)
            if ahead < 0x8000:
                self.skipped += ahead
        self._next = uint16_add(seq, 1)
        self.released += 1
        data: bytes = getattr(packet, "_data", packet.payload)
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def without_playout_delay(receiver: Any) -> bool:
    """Give an audio receiver a jitter buffer that hands frames on at once (see the module);
    call it before media flows. False when this aiortc does not have the expected buffer."""
    current = getattr(receiver, _ATTRIBUTE, None)
    if not isinstance(current, JitterBuffer) or getattr(current, "_is_video", True):
        log.warning("webrtc: aiortc's audio jitter buffer not found; inbound audio keeps its delay")
        return False
    setattr(receiver, _ATTRIBUTE, AudioJitterBuffer(capacity=current.capacity))
    return True
