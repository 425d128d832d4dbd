"""The outbound buffer every transport's sink is built on, without a transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from media.frames import FRAME_BYTES, AudioFrame
from media.outbound import OutboundFrames


def frame(n: int) -> AudioFrame:
    return AudioFrame(bytes([n]) * FRAME_BYTES, n)


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until `condition` holds (a bounded number of loop turns)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_frames_are_taken_in_order_and_count_as_played() -> None:
    sink = OutboundFrames(max_frames=5)
    assert sink.take() is None and sink.played_until == 0  # nothing queued
    for n in range(3):
        await sink.write(frame(n))
    assert sink.buffered == 3 and sink.played_until == 0
    taken = [sink.take(), sink.take_played()]
    assert [f.seq for f in taken if f is not None] == [0, 1]
    assert sink.buffered == 1 and sink.played_until == 2


async def test_clear_drops_what_is_queued_and_keeps_the_played_count() -> None:
    sink = OutboundFrames(max_frames=5)
    for n in range(4):
        await sink.write(frame(n))
    sink.take()
    assert sink.clear() == 3
    assert sink.buffered == 0 and sink.played_until == 1
    assert sink.take() is None and sink.clear() == 0
    await sink.write(frame(9))  # the buffer is usable again
    taken = sink.take()
    assert taken is not None and taken.seq == 9 and sink.played_until == 2


async def test_a_writer_waits_at_the_bound_until_a_frame_is_taken() -> None:
    sink = OutboundFrames(max_frames=2)
    await sink.write(frame(0))
    await sink.write(frame(1))
    writer = asyncio.create_task(sink.write(frame(2)))
    await until(lambda: sink.writer_waiting)
    assert not writer.done() and sink.buffered == 2  # never more than the bound
    sink.take()
    await asyncio.wait_for(writer, 5)
    assert not sink.writer_waiting and sink.buffered == 2
    assert [f.seq for f in (sink.take(), sink.take()) if f is not None] == [1, 2]


async def test_take_played_leaves_waking_the_writer_to_wake_writers() -> None:
    sink = OutboundFrames(max_frames=1)
    await sink.write(frame(0))
    writer = asyncio.create_task(sink.write(frame(1)))
    await until(lambda: sink.writer_waiting)
    assert sink.take_played() is not None  # what a taker on another thread does
    for _ in range(10):  # the writer is not woken, however long the loop runs
        await asyncio.sleep(0)
    assert not writer.done() and sink.writer_waiting
    sink.wake_writers()  # what that taker has the loop run
    await asyncio.wait_for(writer, 5)
    assert sink.buffered == 1


async def test_clear_lets_a_waiting_writer_in() -> None:
    sink = OutboundFrames(max_frames=1)
    await sink.write(frame(0))
    writer = asyncio.create_task(sink.write(frame(1)))
    await until(lambda: sink.writer_waiting)
    assert sink.clear() == 1
    await asyncio.wait_for(writer, 5)
    taken = sink.take()
    assert taken is not None and taken.seq == 1


async def test_close_releases_a_waiting_writer_and_discards_later_writes() -> None:
    sink = OutboundFrames(max_frames=1)
    await sink.write(frame(0))
    writer = asyncio.create_task(sink.write(frame(1)))
    await until(lambda: sink.writer_waiting)
    sink.close()
    await asyncio.wait_for(writer, 5)
    assert sink.closed and sink.buffered == 0
    await sink.write(frame(2))
    assert sink.buffered == 0 and sink.take() is None and sink.played_until == 0
