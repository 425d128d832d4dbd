"""The SIP call audio between the bridge thread and asyncio, without a call: the loop
handoff (one wakeup per bridge tick), the inbound and outbound buffers fed through it, and
the fast `MediaFrame` access in `sip.vector`.

The handoff's scheduler is a fake that only records what would wake the loop; tests run
the scheduled drains themselves, so nothing here waits on time."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable

import pjsua2 as pj
import pytest

from media.frames import FRAME_BYTES, AudioFrame
from media.inbound import InboundFrames
from sip.media_port import LoopHandoff, SipAudio, loop_handoff
from sip.vector import _SlowFrames, fast_access, read_frame, write_frame


class FakeLoop:
    """Stands in for `loop.call_soon_threadsafe`: records the drains the handoff asks for."""

    def __init__(self) -> None:
        self.scheduled: list[Callable[[], None]] = []
        self.closed = False

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        if self.closed:
            raise RuntimeError("Event loop is closed")
        self.scheduled.append(fn)

    def run(self) -> int:
        """Run the drains scheduled so far; how many ran."""
        ran, self.scheduled = self.scheduled, []
        for fn in ran:
            fn()
        return len(ran)


def pcm(n: int) -> bytes:
    return bytes([n % 256]) * FRAME_BYTES


# -- LoopHandoff -----------------------------------------------------------------------


def test_posts_before_the_drain_share_one_wakeup_and_keep_their_order() -> None:
    loop = FakeLoop()
    handoff = LoopHandoff(loop.call_soon_threadsafe)
    got: list[tuple[str, int]] = []
    for n in range(4):
        handoff.post(lambda v: got.append(("a", v)), n)
        handoff.post(lambda v: got.append(("b", v)), n)
    assert len(loop.scheduled) == 1  # the first post woke the loop; the rest ride along
    assert loop.run() == 1
    assert got == [(k, n) for n in range(4) for k in "ab"]
    assert (handoff.posts, handoff.wakeups) == (8, 1)
    handoff.post(lambda v: got.append(("c", v)), 9)  # after the drain: a new wakeup
    assert loop.run() == 1 and got[-1] == ("c", 9)


def test_a_post_during_the_drain_is_run_by_it_or_wakes_the_loop_again() -> None:
    loop = FakeLoop()
    handoff = LoopHandoff(loop.call_soon_threadsafe)
    got: list[int] = []

    def first(v: int) -> None:
        got.append(v)
        handoff.post(got.append, v + 1)  # as the bridge thread may, mid-drain

    handoff.post(first, 1)
    loop.run()
    assert got == [1, 2]  # run by the same drain
    loop.run()  # at most one spare wakeup, with nothing left to do
    assert got == [1, 2] and not loop.scheduled


def test_posts_without_wake_wait_for_the_last_port_of_the_tick() -> None:
    loop = FakeLoop()
    handoff = LoopHandoff(loop.call_soon_threadsafe)
    call1, call2 = InboundFrames(10), InboundFrames(10)
    handoff.register(call1, 3)
    handoff.register(call2, 7)
    assert handoff.last_slot == 7
    got: list[int] = []
    handoff.post(got.append, 1, wake=False)  # slot 3: not the last port this tick
    assert not loop.scheduled
    handoff.post(got.append, 2, wake=True)  # slot 7: the last one wakes the loop for both
    loop.run()
    assert got == [1, 2]
    handoff.unregister(call2)
    assert handoff.last_slot == 3
    handoff.unregister(call1)
    assert handoff.last_slot == -1
    ended = InboundFrames(10)
    ended.end()
    handoff.register(ended, 9)  # a port created as its call ended: never the last one
    assert handoff.last_slot == -1


def test_flush_wakes_the_loop_for_what_a_departed_port_left_behind() -> None:
    loop = FakeLoop()
    handoff = LoopHandoff(loop.call_soon_threadsafe)
    got: list[int] = []
    handoff.flush()
    assert not loop.scheduled  # nothing queued: no wakeup
    handoff.post(got.append, 1, wake=False)  # the last port left the bridge before posting
    handoff.flush()  # the next tick's first request
    handoff.flush()  # ... and the following ports': one wakeup is enough
    assert len(loop.scheduled) == 1
    loop.run()
    assert got == [1]


def test_posts_after_the_loop_closed_are_dropped() -> None:
    loop = FakeLoop()
    handoff = LoopHandoff(loop.call_soon_threadsafe)
    loop.closed = True
    got: list[int] = []
    handoff.post(got.append, 1)  # must not raise into pjsua2's callback
    loop.closed = False
    handoff.post(got.append, 2)
    handoff.flush()
    assert not loop.scheduled and got == []


def test_a_failing_call_does_not_stop_the_others() -> None:
    loop = FakeLoop()
    handoff = LoopHandoff(loop.call_soon_threadsafe)
    got: list[int] = []

    def boom(_: int) -> None:
        raise ValueError("bad frame")

    handoff.post(boom, 0)
    handoff.post(got.append, 1)
    loop.run()
    assert got == [1]


async def test_each_loop_has_one_handoff() -> None:
    loop = asyncio.get_running_loop()
    assert loop_handoff(loop) is loop_handoff(loop)
    assert SipAudio(loop).handoff is loop_handoff(loop)


def test_a_loop_with_a_handoff_can_still_be_collected() -> None:
    loop = asyncio.new_event_loop()
    handoff = loop_handoff(loop)
    ref = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert ref() is None
    handoff.post(print, "late")  # the loop is gone: dropped, not raised
    handoff.flush()


# -- SipAudio through the handoff ------------------------------------------------------


async def test_inbound_frames_reach_the_reader_in_order_with_one_wakeup_per_tick() -> None:
    fake = FakeLoop()
    handoff = LoopHandoff(fake.call_soon_threadsafe)
    calls = [SipAudio(asyncio.get_running_loop(), handoff=handoff) for _ in range(3)]
    for tick in range(5):  # the bridge's tick: every port's frame, then one wakeup
        for i, audio in enumerate(calls):
            audio.source.from_bridge(pcm(tick), wake=i == len(calls) - 1)
        assert fake.run() == 1
    for audio in calls:
        audio.end()
    for audio in calls:
        frames = [f async for f in audio.source.frames()]
        assert [f.seq for f in frames] == list(range(5))
        assert [f.pcm[0] for f in frames] == list(range(5))


async def test_inbound_drops_malformed_frames_and_frames_after_the_end() -> None:
    fake = FakeLoop()
    audio = SipAudio(asyncio.get_running_loop(), handoff=LoopHandoff(fake.call_soon_threadsafe))
    audio.source.from_bridge(b"\x00" * 10)  # not a 20 ms frame
    audio.source.from_bridge(pcm(1))
    fake.run()
    audio.end()
    audio.source.from_bridge(pcm(2))
    fake.run()
    assert [f.pcm[0] async for f in audio.source.frames()] == [1]


async def test_inbound_end_leaves_the_handoff() -> None:
    fake = FakeLoop()
    handoff = LoopHandoff(fake.call_soon_threadsafe)
    audio = SipAudio(asyncio.get_running_loop(), handoff=handoff)
    handoff.register(audio.source, 5)
    audio.end()
    assert handoff.last_slot == -1


async def test_outbound_frames_go_to_the_bridge_in_order_and_count_as_played() -> None:
    fake = FakeLoop()
    audio = SipAudio(
        asyncio.get_running_loop(),
        outbound_frames=3,
        handoff=LoopHandoff(fake.call_soon_threadsafe),
    )
    sink = audio.sink
    assert sink.to_bridge() is None  # nothing queued: silence
    for n in range(3):
        await sink.write(AudioFrame(pcm(n), n))
    assert sink.buffered == 3
    assert [sink.to_bridge() for _ in range(2)] == [pcm(0), pcm(1)]
    assert sink.played_until == 2
    assert sink.clear() == 1  # barge-in drops the rest at once
    assert sink.to_bridge() is None and sink.played_until == 2


async def test_a_writer_waiting_for_space_is_woken_through_the_handoff() -> None:
    fake = FakeLoop()
    audio = SipAudio(
        asyncio.get_running_loop(),
        outbound_frames=2,
        handoff=LoopHandoff(fake.call_soon_threadsafe),
    )
    sink = audio.sink
    await sink.write(AudioFrame(pcm(0), 0))
    await sink.write(AudioFrame(pcm(1), 1))
    writer = asyncio.create_task(sink.write(AudioFrame(pcm(2), 2)))
    await asyncio.sleep(0)  # let the writer find the buffer full
    assert not writer.done()
    assert sink.to_bridge() == pcm(0)  # the bridge frees a slot (its own thread, in life)
    assert not fake.scheduled  # the space wakeup waits for the tick's last inbound frame
    audio.source.from_bridge(pcm(9))
    fake.run()
    await asyncio.wait_for(writer, 5)
    assert [sink.to_bridge() for _ in range(2)] == [pcm(1), pcm(2)]


async def test_ending_the_audio_releases_a_waiting_writer() -> None:
    audio = SipAudio(
        asyncio.get_running_loop(),
        outbound_frames=1,
        handoff=LoopHandoff(FakeLoop().call_soon_threadsafe),
    )
    await audio.sink.write(AudioFrame(pcm(0), 0))
    writer = asyncio.create_task(audio.sink.write(AudioFrame(pcm(1), 1)))
    await asyncio.sleep(0)
    audio.end()
    await asyncio.wait_for(writer, 5)
    assert audio.sink.buffered == 0


# -- sip.vector: MediaFrame access ------------------------------------------------------


def test_the_ctypes_frame_layout_holds_for_this_pjsua2() -> None:
    assert fast_access(), "the ctypes MediaFrame layout check failed: SIP audio is slow"


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_frames_read_and_write_like_the_swig_accessors(path: str) -> None:
    read, write = (read_frame, write_frame)
    if path == "slow":
        slow = _SlowFrames(pj)
        read, write = slow.read, slow.write
    requested = pj.MediaFrame()
    assert requested.type == pj.PJMEDIA_FRAME_TYPE_NONE
    assert read(requested) is None  # a requested frame left alone is silence
    data = bytes(range(256)) * 2 + bytes(range(128))
    write(requested, data)
    assert requested.type == pj.PJMEDIA_FRAME_TYPE_AUDIO
    assert requested.size == len(data) and bytes(requested.buf) == data
    received = pj.MediaFrame()
    received.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
    received.buf = pj.ByteVector(data[::-1])
    received.size = len(data)
    assert read(received) == data[::-1]
    write(received, pcm(7))  # a second write replaces the audio
    assert read(received) == pcm(7)
