"""The caller loop against a scripted fake node on a virtual clock: the bench must report the
node's known delays (counted in 20 ms frames) within one frame."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bench.scenario import SpokenLine
from bench.wire.caller import Caller, CallerOptions
from bench.wire.leg import LegTarget
from bench.wire.measure import greeting_s, line_latencies, packet_gaps
from bench.wire.runner import run_call
from bench.wire.timeline import CallTimeline
from media.clock import VirtualClock

from .wire_fakes import FakeLeg, ScriptedNode, fake_opener, line

F = 0.02
OPTIONS = CallerOptions(reply_gap_s=0.3, reply_timeout_s=2.0, max_call_s=60.0)


async def drive(clock: VirtualClock, task: asyncio.Task[CallTimeline]) -> CallTimeline:
    """Advance the virtual clock a frame at a time until the call is over."""
    for _ in range(10_000):
        if task.done():
            return task.result()
        await clock.advance(F)
    raise AssertionError("the call did not end")


async def call(node: ScriptedNode, lines: Sequence[SpokenLine]) -> tuple[CallTimeline, FakeLeg]:
    clock = VirtualClock(100.0)
    caller = Caller(lines, clock, options=OPTIONS)
    leg = FakeLeg(node, caller.on_audio, clock)
    caller.answered()
    tl = await drive(clock, asyncio.ensure_future(caller.run(leg)))
    return tl, leg


@pytest.mark.parametrize("send_silence", [False, True])
@pytest.mark.parametrize("reply_after", [0, 7, 23])
async def test_voice_to_voice_is_the_nodes_delay_within_a_frame(
    reply_after: int, send_silence: bool
) -> None:
    node = ScriptedNode(greeting_after=12, reply_after=reply_after, send_silence=send_silence)
    tl, _ = await call(node, [line(), line(speech_s=1.0)])
    assert tl.ended_by == "caller"
    assert len(tl.lines) == 2
    lat = line_latencies(tl)
    for t in lat:
        assert t.v2v_s is not None
        assert abs(t.v2v_s - reply_after * F) <= F, (t, reply_after)
    g = greeting_s(tl)
    assert g is not None and abs(g - 12 * F) <= F


async def test_lines_wait_for_the_reply_to_finish() -> None:
    node = ScriptedNode(greeting_after=5, greeting_frames=40, reply_after=10, reply_frames=50)
    pause_ms = 200
    tl, _ = await call(node, [line(pause_ms=pause_ms), line(pause_ms=pause_ms)])
    greeting_end = tl.answered + (5 + 40) * F  # type: ignore[operator]
    first, second = tl.lines
    # Speech from the greeting's end: the gap, the pause, then the line's 0.2 s lead-in.
    wait = OPTIONS.reply_gap_s + pause_ms / 1000
    assert first.start == pytest.approx(greeting_end + wait, abs=F)
    reply_end = first.speech_end + (10 + 50) * F
    assert second.start == pytest.approx(reply_end + wait, abs=F)
    # The line's speech is its tone, 0.2 s in, 0.6 s long.
    assert first.speech_onset - first.start == pytest.approx(0.2)
    assert first.speech_end - first.speech_onset == pytest.approx(0.6)


async def test_barge_in_stop_is_the_nodes_delay_within_a_frame() -> None:
    node = ScriptedNode(reply_after=5, reply_frames=150, stop_after=6)
    lines = [line(), line(barge_in_ms=500, speech_s=1.0), line()]
    tl, _ = await call(node, lines)
    assert node.log and node.log[0].startswith("barge-in")
    lat = line_latencies(tl)
    barge = lat[1]
    assert barge.barge_in_stop_s is not None
    assert abs(barge.barge_in_stop_s - 6 * F) <= F
    # The barge-in line started 500 ms after the reply to line 0 started (plus its lead-in).
    reply_start = tl.lines[0].speech_end + 5 * F
    assert tl.lines[1].start == pytest.approx(reply_start + 0.5, abs=F)
    # And the reply to the barge-in line is measured like any other.
    assert barge.v2v_s is not None and abs(barge.v2v_s - 5 * F) <= F
    # Packets flowed every 20 ms inside replies: no gap counted beyond a frame.
    gaps = packet_gaps(tl)
    assert gaps and max(gaps) == pytest.approx(F)


async def test_a_silent_node_times_out_each_line() -> None:
    node = ScriptedNode(greeting_frames=0, reply_frames=0)
    tl, _ = await call(node, [line(), line()])
    assert [t.v2v_s for t in line_latencies(tl)] == [None, None]
    assert tl.lines[0].start - tl.answered == pytest.approx(OPTIONS.reply_timeout_s, abs=F)  # type: ignore[operator]
    assert tl.ended_by == "caller"


async def test_the_call_stops_when_the_node_hangs_up() -> None:
    node = ScriptedNode()
    clock = VirtualClock()
    caller = Caller([line(), line()], clock, options=OPTIONS)
    leg = FakeLeg(node, caller.on_audio, clock)
    caller.answered()
    task = asyncio.ensure_future(caller.run(leg))
    await clock.advance(1.0)
    leg.closed.set()
    tl = await drive(clock, task)
    assert tl.ended_by == "agent"
    # Noticed at the first frame slot after the hang-up.
    assert tl.ended is not None and 1.0 < tl.ended <= 1.0 + F + 1e-9
    assert tl.frames_sent == pytest.approx(50, abs=1)


async def test_run_call_opens_records_and_hangs_up() -> None:
    node = ScriptedNode(reply_after=3)
    clock = VirtualClock()
    opener = fake_opener(node, clock)
    task = asyncio.ensure_future(
        run_call(0, opener, LegTarget(), [line()], clock=clock, options=OPTIONS)
    )
    tl = await drive(clock, task)
    assert tl.call_id == "fake-call"
    assert tl.ended_by == "caller"
    assert tl.frames_sent == node.frames_in
    assert len(tl.packets) == node.packets_out
    v2v = line_latencies(tl)[0].v2v_s
    assert v2v is not None and abs(v2v - 3 * F) <= F
