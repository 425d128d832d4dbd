"""Burst and staggered arrivals: the turn gate, a burst of callers on a virtual clock, the
bench's CPU in a step, and a tiny soak against fake nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.wire.arrivals import TurnGate, arrival_modes
from bench.wire.caller import Caller, CallerOptions, prepare_lines
from bench.wire.leg import LegTarget
from bench.wire.node import NodeStats, free_port
from bench.wire.soak import SoakOptions, soak_calls, soak_report, write_soak
from media.clock import VirtualClock

from .wire_fakes import FakeLeg, FakeNodes, ScriptedNode, line

F = 0.02


def test_arrival_modes() -> None:
    assert arrival_modes("both") == ["burst", "staggered"]
    assert arrival_modes("burst") == ["burst"]
    with pytest.raises(ValueError, match="arrivals"):
        arrival_modes("trickle")


def test_the_gate_opens_when_every_live_call_is_ready() -> None:
    gate = TurnGate(range(3))
    assert gate.arrive(0, 1, 1.0) == 1.0
    assert gate.arrive(0, 1, 1.2) == 1.0  # the first time is kept
    gate.arrive(1, 1, 1.5)
    assert not gate.is_open(1)
    gate.leave(2)  # ended: nobody waits for it
    assert gate.is_open(1) and gate.opened_at(1) == 1.5
    assert not gate.is_open(2)


def test_lines_are_prepared_once() -> None:
    prepared = prepare_lines([line(), line(text="again")])
    assert prepare_lines(prepared) == prepared
    assert [p.index for p in prepared] == [0, 1]
    assert all(len(f) == 640 for p in prepared for f in p.frames)


async def test_a_burst_speaks_each_line_at_once() -> None:
    """Two calls whose agents answer at different speeds start each line together."""
    clock = VirtualClock()
    gate = TurnGate(range(2))
    lines = prepare_lines([line(text="one"), line(text="two"), line(text="three")])
    opts = CallerOptions(reply_gap_s=0.3, reply_timeout_s=3.0)
    runs = []
    for i, reply_after in enumerate((5, 40)):
        caller = Caller(lines, clock, call=i, options=opts, gate=gate)
        leg = FakeLeg(ScriptedNode(reply_after=reply_after), caller.on_audio, clock)
        runs.append(asyncio.ensure_future(caller.run(leg)))
    for _ in range(5_000):
        if all(r.done() for r in runs):
            break
        await clock.advance(F)
    fast, slow = [await r for r in runs]
    assert [x.text for x in fast.lines] == ["one", "two", "three"]
    for a, b in zip(fast.lines, slow.lines, strict=True):
        assert abs(a.start - b.start) <= F + 1e-9
    assert gate.is_open(1) and gate.is_open(2)


def _cfg(tmp_path: Path) -> SoakOptions:
    return SoakOptions(
        calls=1,
        minutes=0.1,
        transport="audiosocket",
        out=tmp_path,
        caller=CallerOptions(reply_gap_s=0.3, reply_timeout_s=2.0),
    )


async def test_a_tiny_soak_keeps_calls_going_and_writes_its_report(tmp_path: Path) -> None:
    """A 0.1 minute soak of one call on a virtual clock (calls last about 2 s)."""
    clock = VirtualClock()
    nodes = FakeNodes(lambda: ScriptedNode(reply_after=5, greeting_frames=5), clock)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: samples are empty
    target = LegTarget(base_url=nowhere)
    soak = asyncio.ensure_future(
        soak_calls(
            1,
            6.0,
            nodes,
            target,
            prepare_lines([line(speech_s=0.2, lead_s=0.0, tail_s=0.0)]),
            NodeStats(nowhere),
            _cfg(tmp_path),
            sample_s=1.0,
            clock=clock,
        )
    )
    for _ in range(20_000):
        if soak.done():
            break
        await clock.advance(F)
    run = await soak
    assert len(run.timelines) >= 2  # a new call replaced the one that ended
    assert run.timelines[-1].started < run.started + 6.0
    assert all(tl.ended_by in ("caller", "agent") for tl in run.timelines)
    assert run.samples
    report = soak_report(run, calls=1, minutes=0.1, node={"mode": "fake"})
    assert report["failed_calls"] == 0 and report["calls_run"] == len(run.timelines)
    assert report["v2v_ms"]["n"] >= 1
    assert report["targets"]["no_failed_calls"]["met"] is True
    assert report["targets"]["rss_growth_pct"]["met"] is None  # no RSS without a node
    paths = write_soak(report, run, tmp_path)
    assert all(p.exists() for p in paths)
    assert "Soak" in (tmp_path / "report.md").read_text()
