"""Wire reports and plots from scripted calls (fake node, virtual clock), and the sweep logic."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import matplotlib.image
import pytest

from bench.wire.caller import Caller, CallerOptions
from bench.wire.plots import write_plots
from bench.wire.report import render_markdown, wire_report, write_wire_report
from bench.wire.runner import StepResult, SweepOptions, capacity, next_step
from bench.wire.timeline import CallTimeline, NodeTranscript, NodeTurn
from media.clock import VirtualClock

from .wire_fakes import FakeLeg, ScriptedNode, line

F = 0.02
OPTIONS = CallerOptions(reply_gap_s=0.3, reply_timeout_s=2.0)


async def scripted_call(index: int, reply_after: int, stop_after: int = 5) -> CallTimeline:
    clock = VirtualClock(10.0 * index)
    node = ScriptedNode(reply_after=reply_after, reply_frames=120, stop_after=stop_after)
    lines = [
        line(text="Hi, I'd like to book a cleaning.", expect="your name"),
        line(text="My name is Maria.", barge_in_ms=400),
    ]
    caller = Caller(lines, clock, call=index, options=OPTIONS, expect_greeting="Bright Smile")
    leg = FakeLeg(node, caller.on_audio, clock)
    caller.answered()
    task = asyncio.ensure_future(caller.run(leg))
    while not task.done():
        await clock.advance(F)
    tl = task.result()
    tl.call_id = f"call-{index}"
    tl.transcripts = [
        NodeTranscript(role="agent", text="Thanks for calling Bright Smile Dental."),
        NodeTranscript(role="user", text="Hi, I'd like to book a cleaning."),
        NodeTranscript(role="agent", text="Sure. Can I have your name, please?"),
        NodeTranscript(role="user", text="My name is Mario."),
    ]
    marks = {
        "speech_end": 0.0,
        "endpoint": 0.2,
        "final_transcript": 0.25,
        "agent_first_text": 0.26,
        "first_tts_audio": 0.4,
        "first_frame_out": 0.41,
    }
    tl.node_turns = [NodeTurn(turn=1, marks=marks, voice_to_voice_ms=410.0)]
    return tl


async def steps() -> list[StepResult]:
    one = StepResult(calls=1, timelines=[await scripted_call(0, 20)], wall_s=10.0, cpu_s=3.0)
    two = StepResult(
        calls=2,
        timelines=[await scripted_call(0, 30), await scripted_call(1, 40)],
        wall_s=10.0,
        cpu_s=8.0,
        peak_rss_bytes=300 * 2**20,
    )
    return [one, two]


def report_of(results: list[StepResult], *, swept: bool = True) -> dict[str, object]:
    return wire_report(
        results,
        transport="audiosocket",
        scenario={"name": "demo", "agent": "receptionist", "lines": 2},
        node={"mode": "spawned", "url": "http://127.0.0.1:1"},
        machine={"cpu_count": 2},
        capacity_calls=capacity(results, 1500.0) if swept else None,
        swept=swept,
        target_p95_ms=1500.0,
    )


async def test_report_json_has_every_metric_with_numbers(tmp_path: Path) -> None:
    results = await steps()
    report = report_of(results)
    json_path, md_path = write_wire_report(report, tmp_path)
    doc = json.loads(json_path.read_text())
    for key in ("v2v_ms", "greeting_ms", "barge_in_stop_ms", "packet_gap_ms"):
        for q in ("p50", "p95", "p99"):
            assert isinstance(doc[key][q], float), (key, q)
    # The first step: one call, two lines answered 20 frames after the caller stopped.
    assert doc["calls"] == 1
    assert doc["v2v_ms"]["n"] == 2
    assert doc["v2v_ms"]["p50"] == pytest.approx(400.0, abs=20.0)
    assert doc["greeting_ms"]["p50"] == pytest.approx(200.0, abs=20.0)
    assert doc["barge_in_stop_ms"]["p50"] == pytest.approx(100.0, abs=20.0)
    assert doc["packet_gap_ms"]["p99"] == pytest.approx(20.0, abs=1.0)
    # "Maria" heard as "Mario": one error in eleven words.
    assert doc["caller_wer"]["wer"] == pytest.approx(1 / 11, abs=1e-4)
    assert doc["steps"][0]["expected_replies"] == {"matched": 2, "total": 2}
    node = doc["node_process"]
    assert node["cpu_s"] == 3.0
    assert node["cpu_s_per_call_minute"] == pytest.approx(3.0 / node["call_minutes"], rel=0.01)
    assert node["core_share_per_call"] == pytest.approx(0.3)
    assert doc["node_stages_ms"]["turn_window"]["p50"] == pytest.approx(200.0)
    assert doc["node_stages_ms"]["voice_to_voice"]["p50"] == pytest.approx(410.0)
    # The wire's share: the measured 400 ms less the node's own 410 ms.
    assert doc["wire_added_ms_mean"] == pytest.approx(-10.0, abs=20.0)
    # Targets are reported, never asserted: 400 ms p50 meets 700, capacity 2 < 6 does not.
    targets = doc["targets"]
    assert targets["v2v_p50_ms"]["met"] is True
    assert targets["barge_in_stop_p95_ms"]["met"] is True
    assert targets["capacity_calls"] == {"value": 2.0, "limit": 6.0, "op": ">=", "met": False}
    assert targets["media_core_share_per_call"]["met"] is None
    by_calls = doc["capacity"]["by_calls"]
    assert [r["calls"] for r in by_calls] == [1, 2]
    assert by_calls[1]["v2v_p95_ms"] == pytest.approx(800.0, abs=25.0)
    assert doc["steps"][1]["node"]["peak_rss_mb"] == 300.0
    md = md_path.read_text()
    assert "| voice to voice |" in md and "NOT met" in md and "Capacity" in md


async def test_plots_are_pngs(tmp_path: Path) -> None:
    results = await steps()
    paths = write_plots(report_of(results), results, tmp_path)
    assert sorted(p.name for p in paths) == ["concurrency.png", "latency_cdf.png", "stages.png"]
    for p in paths:
        image = matplotlib.image.imread(p)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0  # something was drawn


def test_a_report_with_no_answered_turn_still_renders(tmp_path: Path) -> None:
    empty = [StepResult(calls=1, timelines=[CallTimeline(call=0, ended_by="error", error="x")])]
    report = report_of(empty, swept=False)
    assert report["v2v_ms"]["n"] == 0 and report["v2v_ms"]["p50"] is None
    assert report["targets"]["v2v_p50_ms"]["met"] is None
    assert report["targets"]["capacity_calls"]["met"] is None
    assert "not measured" in render_markdown(report)
    write_plots(report, empty, tmp_path)
    assert (tmp_path / "latency_cdf.png").stat().st_size > 0


async def test_sweep_steps_up_until_p95_passes_the_target() -> None:
    fast = StepResult(calls=2, timelines=[await scripted_call(0, 20)])
    slow = StepResult(calls=4, timelines=[await scripted_call(0, 90)])
    sweep = SweepOptions(start=2, step=2, max_calls=6, target_p95_ms=1500.0)
    assert next_step(fast, sweep) == 4
    assert next_step(slow, sweep) is None  # 1.8 s > 1.5 s
    assert next_step(StepResult(calls=6, timelines=fast.timelines), sweep) is None  # max
    failed = StepResult(calls=2, timelines=[CallTimeline(call=0, ended_by="refused")])
    failed.timelines += fast.timelines
    assert next_step(failed, sweep) is None
    assert capacity([fast, slow], 1500.0) == 2
    assert capacity([slow], 1500.0) is None
