"""The report maths on synthetic TurnMarks with known values, and the rendered report."""

from __future__ import annotations

import pytest

import bench.report
import pipeline.marks
from bench.report import (
    OVERHEAD,
    STAGES,
    TurnSample,
    build_report,
    node_overhead_ms,
    percentile,
    render_markdown,
    render_table,
    summarize,
    turn_stages_ms,
)

MACHINE = {"cpu_count": 2, "load_avg_1m": 0.5}


def marks(
    *,
    start: float = 10.0,
    window: float = 0.25,
    stt: float = 0.125,
    agent: float = 0.0078125,
    tts: float = 0.25,
    playout: float = 0.0078125,
) -> dict[str, float]:
    """TurnMarks (seconds) from stage durations; dyadic values keep the arithmetic exact."""
    at = start
    out = {"speech_end": at}
    for name, dt in (
        ("endpoint", window),
        ("final_transcript", stt),
        ("agent_first_text", agent),
        ("first_tts_audio", tts),
        ("first_frame_out", playout),
    ):
        at += dt
        out[name] = at
    return out


def test_the_bench_reads_the_nodes_marks_and_stages() -> None:
    """The bench's copy of the node's turn vocabulary (it does not import the pipeline) is the
    node's: the same marks and stages, in the same order, so the reports name what the node
    measures."""
    assert bench.report.MARKS == pipeline.marks.MARKS
    assert list(bench.report.STAGES.items()) == list(pipeline.marks.STAGES.items())


def sample(turn: int = 1, **durations: float) -> TurnSample:
    stages = turn_stages_ms(marks(**durations))
    assert stages is not None
    return TurnSample(run=1, turn=turn, stages_ms=stages)


def test_percentile_interpolates_linearly_between_order_statistics() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile(values, 99) == pytest.approx(4.96)
    assert percentile(values, 100) == 5.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 95) == pytest.approx(38.5)
    assert percentile([7.0], 99) == 7.0


def test_percentile_rejects_no_values_and_q_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], -1)


def test_summarize_gives_n_mean_and_percentiles() -> None:
    assert summarize([500.0, 750.0, 1000.0]) == {
        "n": 3,
        "mean": 750.0,
        "min": 500.0,
        "max": 1000.0,
        "p50": 750.0,
        "p95": 975.0,
        "p99": 995.0,
    }
    assert summarize([]) == {
        "n": 0,
        "mean": None,
        "min": None,
        "max": None,
        "p50": None,
        "p95": None,
        "p99": None,
    }


def test_turn_stages_are_the_marks_intervals_in_ms_plus_the_node_overhead() -> None:
    stages = turn_stages_ms(marks())
    assert stages == {
        "turn_window": 250.0,
        "stt_wait": 125.0,
        "agent": 7.8125,
        "tts_first": 250.0,
        "playout": 7.8125,
        "voice_to_voice": 640.625,
        OVERHEAD: 15.625,
    }
    # Overhead: voice to voice less the turn window and model compute (= agent + playout here).
    assert node_overhead_ms(stages) == 640.625 - 250.0 - 125.0 - 250.0


def test_a_turn_missing_a_mark_is_not_measured() -> None:
    partial = marks()
    del partial["first_frame_out"]
    assert turn_stages_ms(partial) is None
    assert turn_stages_ms({}) is None


def test_report_percentiles_overhead_and_targets() -> None:
    samples = [
        sample(1, window=0.25, stt=0.125, tts=0.0625, agent=0.0, playout=0.0625),  # v2v 500
        sample(2, window=0.5, stt=0.125, tts=0.0625, agent=0.0, playout=0.0625),  # v2v 750
        sample(3, window=0.5, stt=0.25, tts=0.125, agent=0.0625, playout=0.0625),  # v2v 1000
    ]
    report = build_report(samples, machine=MACHINE, extra={"bench": "turns"})
    assert report["bench"] == "turns"
    assert report["n_turns"] == 3
    assert report["v2v_ms"] == report["stages_ms"]["voice_to_voice"]
    assert report["v2v_ms"]["p50"] == 750.0
    assert report["v2v_ms"]["p95"] == 975.0
    assert report["v2v_ms"]["p99"] == 995.0
    assert report["v2v_ms"]["mean"] == 750.0
    assert set(report["stages_ms"]) == set(STAGES)
    assert report["stages_ms"]["turn_window"]["p50"] == 500.0
    assert report["stages_ms"]["stt_wait"]["mean"] == pytest.approx(166.667, abs=1e-9)
    # Overheads 62.5, 62.5, 125.
    assert report["overhead_ms"]["p50"] == 62.5
    assert report["overhead_ms"]["p95"] == 118.75
    assert report["overhead_ms"]["n"] == 3
    targets = report["targets"]
    assert targets["v2v_p50_ms"] == {
        "statistic": "p50",
        "limit_ms": 700.0,
        "value_ms": 750.0,
        "pass": False,
    }
    assert targets["overhead_p50_ms"]["value_ms"] == 62.5
    assert targets["overhead_p50_ms"]["pass"] is False
    assert report["machine"] == MACHINE
    assert [t["turn"] for t in report["turns"]] == [1, 2, 3]
    assert report["turns"][0]["stages_ms"]["voice_to_voice"] == 500.0


def test_targets_pass_at_their_limits() -> None:
    # v2v exactly 700 ms, overhead exactly 30 ms: both pass (the targets are <=).
    s = sample(window=0.25, stt=0.125, tts=0.295, agent=0.01, playout=0.02)
    report = build_report([s], machine=MACHINE)
    assert report["v2v_ms"]["p50"] == 700.0
    assert report["overhead_ms"]["p50"] == 30.0
    assert report["targets"]["v2v_p50_ms"]["pass"] is True
    assert report["targets"]["overhead_p50_ms"]["pass"] is True


def test_no_turns_gives_empty_summaries_and_failed_targets() -> None:
    report = build_report([], machine=MACHINE)
    assert report["n_turns"] == 0
    assert report["v2v_ms"]["p50"] is None
    assert report["targets"]["v2v_p50_ms"]["pass"] is False
    assert "-" in render_table(report)


def test_table_and_markdown_list_every_stage_and_the_verdicts() -> None:
    report = build_report([sample()], machine=MACHINE)
    table = render_table(report)
    for stage in (*STAGES, OVERHEAD):
        assert stage in table
    assert "640.6" in table
    assert "target voice_to_voice p50: 640.6 ms (<= 700 ms) PASS" in table
    assert "target overhead p50: 15.6 ms (<= 30 ms) PASS" in table
    md = render_markdown(report)
    assert "| stage (ms) | n | mean | p50 | p95 | p99 | max |" in md
    assert "| voice_to_voice | 1 | 640.6 | 640.6 | 640.6 | 640.6 | 640.6 |" in md
    assert "| overhead p50 | 15.6 | <= 30 | PASS |" in md
    assert "- cpu_count: 2" in md
