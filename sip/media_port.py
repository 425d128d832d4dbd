"""Call audio between pjsua2's conference bridge and asyncio.

The bridge runs at 16 kHz with 20 ms frames (the node's own format), so pjmedia converts
each codec (PCMU/PCMA at 8 kHz, G722 at 16 kHz) and nothing is resampled in Python. The
bridge's clock thread calls `FramePort.onFrameRequested` of every port, then
`onFrameReceived` of every port, once per 20 ms tick; the only work there is copying a frame
out of or into a deque (`sip.vector` reads and writes pjsua2's frames without the slow SWIG
accessors and keeps the thread's Python state between callbacks; a tick with no agent audio
queued leaves the requested frame alone).

Inbound frames go to the event loop through the loop's `LoopHandoff`: the last port of the
tick wakes the loop once for every call's frame, instead of one wakeup per frame (a wakeup
costs the loop far more CPU than the frame's own work). No frame waits for a later tick.

`SipAudio` is the call's `Transport`: inbound frames wait in a bounded buffer (oldest dropped:
the consumer fell behind), outbound frames in a bounded buffer that `write` waits on; frames
the bridge takes are "played" (`played_until`), `clear()` drops the rest at once (barge-in).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import pjsua2 as pj
from prometheus_client import Counter

from media.frames import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, SILENCE_PCM
from media.inbound import InboundFrames
from media.outbound import OutboundFrames
from media.transport import Transport
from sip.lifetime import LIFETIMES
from sip.vector import frame_access

log = logging.getLogger(__name__)

FRAMES_DROPPED = Counter(
    "voicenode_sip_frames_dropped_total",
    "SIP audio frames dropped because a bounded buffer was full or a frame was malformed",
    ["direction"],
)
FRAMES_DROPPED.labels(direction="in")
FRAMES_DROPPED.labels(direction="out")


class LoopHandoff:
    """Work handed from the bridge's clock thread to the event loop, one wakeup per tick.

    `post(fn, arg)` (any thread) queues `fn(arg)` for the loop; the loop is woken with
    `schedule` (its `call_soon_threadsafe`) to run everything queued, in the order posted.
    `post(..., wake=False)` queues without waking: the bridge's ports post that way and the
    last one in the tick wakes the loop for all of them. In a tick the bridge first asks every
    port for a frame (`onFrameRequested`), then gives every port its frame (`onFrameReceived`)
    in slot order, so the port with the highest slot (`register`ed on creation) posts last;
    `flush()` at the next tick's first request catches anything left (a port that left the
    bridge mid-tick). Once the loop is closed, posts are dropped."""

    def __init__(self, schedule: Callable[[Callable[[], None]], object]) -> None:
        self._schedule = schedule
        self._items: deque[tuple[Callable[[Any], None], Any]] = deque()
        self._scheduled = False
        self._closed = False
        self._slots: dict[InboundFrames, int] = {}
        self._lock = threading.Lock()
        self.last_slot = -1
        """The highest bridge slot of a registered port (-1: none)."""
        self.posts = 0
        self.wakeups = 0
        """Diagnostics: frames and calls posted, and loop wakeups they took."""

    def register(self, key: InboundFrames, slot: int) -> None:
        """The port feeding `key` joined the bridge at `slot` (any thread). A source that has
        already ended is not registered: `ended` is set before `unregister` takes the lock,
        so a port joining as its call ends never stays registered."""
        with self._lock:
            if key.ended:
                return
            self._slots[key] = slot
            self.last_slot = max(self._slots.values())

    def unregister(self, key: InboundFrames) -> None:
        """The source has ended (call `register`'s rule: after setting `ended`)."""
        with self._lock:
            self._slots.pop(key, None)
            self.last_slot = max(self._slots.values(), default=-1)

    def post(self, fn: Callable[[Any], None], arg: Any, wake: bool = True) -> None:
        if self._closed:
            return
        self._items.append((fn, arg))
        self.posts += 1
        # The append comes before the check and the drain clears the flag before it pops:
        # an item is either seen by a drain already scheduled or schedules one of its own.
        if wake and not self._scheduled:
            self._wake()

    def flush(self) -> None:
        """Wake the loop if anything is queued and no wakeup is pending (any thread)."""
        if self._items and not self._scheduled and not self._closed:
            self._wake()

    def _wake(self) -> None:
        self._scheduled = True
        self.wakeups += 1
        try:
            self._schedule(self._drain)
        except RuntimeError:  # the loop has closed: the calls are over
            self._closed = True
            self._items.clear()

    def _drain(self) -> None:
        self._scheduled = False
        items = self._items
        while items:
            fn, arg = items.popleft()
            try:
                fn(arg)
            except Exception:
                log.exception("sip media handoff failed")


_handoffs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopHandoff] = (
    weakref.WeakKeyDictionary()
)
_handoffs_lock = threading.Lock()


def loop_handoff(loop: asyncio.AbstractEventLoop) -> LoopHandoff:
    """The loop's handoff, shared by every call's audio on that loop (any thread)."""
    with _handoffs_lock:
        handoff = _handoffs.get(loop)
        if handoff is None:
            ref = weakref.ref(loop)  # the handoff must not keep its loop (the dict's key) alive

            def schedule(fn: Callable[[], None]) -> None:
                live = ref()
                if live is None:
                    raise RuntimeError("the event loop is gone")
                live.call_soon_threadsafe(fn)

            handoff = _handoffs[loop] = LoopHandoff(schedule)
        return handoff


class SipInbound(InboundFrames):
    """Caller audio as 20 ms frames; fed from the bridge thread through the event loop."""

    def __init__(self, handoff: LoopHandoff, max_frames: int) -> None:
        super().__init__(max_frames)
        self._handoff = handoff

    def from_bridge(self, pcm: bytes, wake: bool = True) -> None:
        """Called on the bridge thread: hand the frame to the loop (dropped once it is closed);
        `wake=False` leaves waking the loop to a later post."""
        self._handoff.post(self._push, pcm, wake)

    def end(self) -> None:
        super().end()
        self._handoff.unregister(self)

    def _push(self, pcm: bytes) -> None:
        if self.ended:
            return
        if len(pcm) != FRAME_BYTES:
            FRAMES_DROPPED.labels(direction="in").inc()
            return
        if self.add(pcm):
            FRAMES_DROPPED.labels(direction="in").inc()


class SipOutbound(OutboundFrames):
    """Agent audio waiting for the bridge: at most `max_frames` (a latency choice)."""

    def __init__(self, handoff: LoopHandoff, max_frames: int) -> None:
        super().__init__(max_frames)
        self._post = handoff.post

    def to_bridge(self) -> bytes | None:
        """Called on the bridge thread: the next queued frame, or None for silence."""
        frame = self.take_played()
        if frame is None:
            return None
        if self.writer_waiting:
            # on the loop (the tick's last port wakes it): an asyncio.Event is not thread-safe
            self._post(SipOutbound.wake_writers, self, False)
        return frame.pcm


class SipAudio(Transport):
    """One SIP call's audio both ways."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        inbound_frames: int = 50,
        outbound_frames: int = 25,
        handoff: LoopHandoff | None = None,
    ) -> None:
        handoff = handoff if handoff is not None else loop_handoff(loop)
        self.handoff = handoff
        self.source: SipInbound = SipInbound(handoff, inbound_frames)
        self.sink: SipOutbound = SipOutbound(handoff, outbound_frames)

    def end(self) -> None:
        """The call's media is gone: the inbound iterator ends, writers return."""
        self.source.end()
        self.sink.close()

    async def close(self) -> None:
        self.end()


def port_format() -> Any:
    """16 kHz mono 16-bit, 20 ms: the bridge's format and the node's."""
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate = SAMPLE_RATE
    fmt.channelCount = 1
    fmt.bitsPerSample = 16
    fmt.frameTimeUsec = FRAME_MS * 1000
    return fmt


class FramePort(pj.AudioMediaPort):  # type: ignore[misc]
    """A conference-bridge port whose frames go to and come from a `SipAudio`.

    Lifetime (see `sip.lifetime`): made on the SIP thread when the call's stream comes up,
    `retire`d by a SIP-thread job once the call is over; the clock thread only runs the two
    frame callbacks. Its reference must not drop before `retire()`: the C++ destructor is what
    takes it off the bridge, and run from Python's deallocation it would let the clock thread
    call into an object whose attributes are already gone."""

    def __init__(self, audio: SipAudio, sip_thread: int) -> None:
        super().__init__()
        self._inbound = audio.source
        self._next = audio.sink.to_bridge
        self._handoff = audio.handoff
        self._read, self._write = frame_access()
        self._slot = -1
        self.retired = False
        LIFETIMES.track(self, sip_thread, on_bridge=True)

    @property
    def slot(self) -> int:
        """The port's conference-bridge slot (-1 before `createPort`)."""
        return self._slot

    def createPort(self, name: str, fmt: Any) -> None:  # noqa: N802 (pjsua2 method)
        """Join the bridge; the handoff learns the port's slot (see `LoopHandoff`)."""
        super().createPort(name, fmt)
        self._slot = int(self.getPortId())
        self._handoff.register(self._inbound, self._slot)

    def retire(self) -> None:
        """Leave the bridge for good (SIP thread, outside pjsua2 callbacks; idempotent).

        The C++ destructor runs now, while this object is whole: it takes the port off the
        bridge (with every connection it had) and waits for a frame callback in flight, after
        which the clock thread cannot reach this object. The Python object is an empty shell
        afterwards: no pjsua2 method may be called on it."""
        if self.retired:
            return
        self.retired = True
        self._handoff.unregister(self._inbound)
        pj.AudioMediaPort.__swig_destroy__(self)
        LIFETIMES.released(self)

    def onFrameReceived(self, frame: Any) -> None:  # noqa: N802 (pjsua2 callback)
        # The bridge ticks every 20 ms; a tick without audio (the caller sends nothing, or
        # comfort noise) is silence, so the turn detector still sees time pass.
        try:
            pcm = self._read(frame)
            self._inbound.from_bridge(
                SILENCE_PCM if pcm is None else pcm, self._slot >= self._handoff.last_slot
            )
        except Exception:  # an exception must never cross into pjmedia's clock thread
            FRAMES_DROPPED.labels(direction="in").inc()

    def onFrameRequested(self, frame: Any) -> None:  # noqa: N802 (pjsua2 callback)
        try:
            self._handoff.flush()
            # pjsua2 hands a frame with no audio: leaving it so is silence.
            pcm = self._next()
            if pcm is not None:
                self._write(frame, pcm)
        except Exception:  # an exception must never cross into pjmedia's clock thread
            FRAMES_DROPPED.labels(direction="out").inc()
