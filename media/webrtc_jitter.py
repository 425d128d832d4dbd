"""Inbound WebRTC audio without aiortc's playout delay.

aiortc's receiver keeps each audio packet in its jitter buffer until four later frames have
arrived (`JitterBuffer(capacity=16, prefetch=4)`): a fixed 80 ms, there so that a player gets
smooth audio. The node does not play the caller's audio; it runs VAD and speech recognition
on it, which only need the frames in order. With `prefetch=1` a frame goes on as soon as it is
complete (the next packet has arrived): 60 ms sooner on every frame, so the caller's end of
speech reaches turn detection 60 ms earlier. Reordering and loss are handled as before: the
buffer still waits for a missing packet until it overflows.

The buffer is aiortc's private state (`RTCRtpReceiver.__jitter_buffer`, aiortc 1.x); where an
aiortc version lays it out differently nothing is changed and the call works as it would
have, with the extra delay.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiortc.jitterbuffer import JitterBuffer

log = logging.getLogger(__name__)

PREFETCH_FRAMES: Final = 1
_ATTRIBUTE: Final = "_RTCRtpReceiver__jitter_buffer"


def without_playout_delay(receiver: Any) -> bool:
    """Give an audio receiver a jitter buffer that hands frames on at once (see the module);
    call it before media flows. False when this aiortc does not have the expected buffer."""
    current = getattr(receiver, _ATTRIBUTE, None)
    if not isinstance(current, JitterBuffer) or getattr(current, "_is_video", True):
        log.warning("webrtc: aiortc's audio jitter buffer not found; inbound audio keeps its delay")
        return False
    setattr(receiver, _ATTRIBUTE, JitterBuffer(capacity=current.capacity, prefetch=PREFETCH_FRAMES))
    return True
