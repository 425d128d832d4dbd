"""Turn-taking classification and report, fed recorded timings (no models): events with the
clock time the session emitted them, each line's send span and voiced span."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

import bench.turns
from bench.cli import main
from bench.scenario import Render, SpokenLine
from bench.turn_taking import LineOutcome, Reply, Timeline, classify, reply_of
from bench.turn_taking_report import build_report, render_markdown, write_report
from bench.turns import Calls

from .test_report import MACHINE
from .wire_fakes import tone

SILENT = np.zeros(0, dtype=np.int16)


def _line(
    voiced: tuple[float, float],
    *,
    category: str = "question",
    barge_in_ms: int | None = None,
    backchannel: bool = False,
) -> SpokenLine:
    return SpokenLine(
        samples=SILENT,
        text=f"a {category} line",
        barge_in_ms=barge_in_ms,
        category=category,
        voice="piper",
        backchannel=backchannel,
        voiced=voiced,
    )


def _reply(speech_end: float, first_frame: float) -> tuple[float, Event]:
    """A reply's `TurnMetrics`: emitted at its first frame out (marks from the call's start)."""
    return first_frame, (speech_end, first_frame, round((first_frame - speech_end) * 1000, 1))


Event = str | Reply
"""A state change, or an answered turn."""


def _timeline(
    recorded: Sequence[tuple[float, Event]], spans: list[tuple[float, float]]
) -> Timeline:
    states = [(t, e) for t, e in recorded if isinstance(e, str)]
    replies = [e for _, e in recorded if not isinstance(e, str)]
    return Timeline(states=states, replies=replies, spans=spans)


def _one(
    recorded: Sequence[tuple[float, Event]],
    span: tuple[float, float],
    line: SpokenLine,
) -> LineOutcome:
    (outcome,) = classify(_timeline(recorded, [span]), [line], scenario="s", voice="piper")
    assert outcome.spoken
    return outcome


GREETED: list[tuple[float, Event]] = [
    (0.0, "thinking"),
    (0.5, "agent_speaking"),
    (3.0, "listening"),
]


def test_a_question_answered_after_it_ended() -> None:
    # Voiced from 10.1 to 11.6 s; the turn ended at 11.9 and the reply's first frame at 12.45.
    recorded = [
        *GREETED,
        (10.3, "user_speaking"),
        (11.9, "thinking"),
        (12.4, "agent_speaking"),
        _reply(11.58, 12.45),
    ]
    o = _one(recorded, (10.0, 12.0), _line((0.1, 1.6)))
    assert (o.kind, o.premature, o.cut_in_ms) == ("turn", False, None)
    assert o.v2v_ms == 850.0  # from the line's last voiced sample, not the VAD's speech end
    assert o.node_v2v_ms == 870.0
    assert o.over_speech is None and o.stopped is None


def test_a_reply_is_read_from_its_turn_metrics() -> None:
    # Marks count from the call's start (here 100 s earlier than the clock's zero).
    marks = {"speech_end": 1.5, "endpoint": 1.75, "first_frame_out": 2.25}
    assert reply_of(102.25, marks, 750.0) == (101.5, 102.25, 750.0)
    assert reply_of(102.25, {"endpoint": 1.75, "first_frame_out": 2.25}, None) is None


def test_an_endpoint_in_a_pause_inside_the_line_is_a_premature_cut_in() -> None:
    # "five five five ... two one two": the node ended the turn in the pause at 21.5, the
    # caller went on (the turn taken back), the line ended at 23.0.
    recorded = [
        *GREETED,
        (20.1, "user_speaking"),
        (21.5, "thinking"),
        (21.9, "user_speaking"),
        (23.4, "thinking"),
        (23.9, "agent_speaking"),
        # The early turn's reply got a frame out before the turn was taken back.
        _reply(21.2, 21.9),
        _reply(22.95, 23.95),
    ]
    o = _one(recorded, (20.0, 23.2), _line((0.0, 3.0), category="numbers"))
    assert (o.premature, o.cut_in_ms) == (True, 1500.0)
    assert o.v2v_ms == 950.0  # the turn's last end


def test_the_agent_speaking_before_the_line_ended_is_a_cut_in_too() -> None:
    recorded = [*GREETED, (10.2, "user_speaking"), (11.0, "agent_speaking")]
    o = _one(recorded, (10.0, 12.0), _line((0.0, 1.5)))
    assert (o.premature, o.cut_in_ms) == (True, 500.0)
    assert o.v2v_ms is None  # no reply measured


BARGE = _line((0.05, 1.4), category="barge-in", barge_in_ms=1500)
SPEAKING: list[tuple[float, Event]] = [
    *GREETED,
    (29.5, "thinking"),
    (30.0, "agent_speaking"),
]


def test_a_barge_in_that_stopped_the_agent() -> None:
    recorded = [
        *SPEAKING,
        (31.75, "user_speaking"),
        (32.8, "thinking"),
        (33.3, "agent_speaking"),
        _reply(32.4, 33.35),
    ]
    o = _one(recorded, (31.0, 32.5), BARGE)
    assert (o.kind, o.over_speech, o.stopped, o.stop_ms) == ("barge_in", True, True, 700.0)
    assert not o.missed_barge_in and o.premature is False
    assert o.v2v_ms == 950.0


def test_a_barge_in_the_agent_talked_through_is_missed() -> None:
    o = _one([*SPEAKING, (43.0, "listening")], (31.0, 32.5), BARGE)
    assert (o.over_speech, o.stopped, o.stop_ms) == (True, False, None)
    assert o.missed_barge_in
    # Stopped only after the line's end plus the grace: missed as well.
    late = _one([*SPEAKING, (33.0, "user_speaking")], (31.0, 32.5), BARGE)
    assert late.missed_barge_in


def test_a_barge_in_line_said_when_the_agent_was_not_speaking_counts_in_neither() -> None:
    done = _one([*SPEAKING, (30.8, "listening")], (31.0, 32.5), BARGE)
    assert (done.over_speech, done.missed_barge_in) == (False, False)
    # The reply ended by itself just as the caller started: not talked over either.
    ending = _one([*SPEAKING, (31.15, "listening")], (31.0, 32.5), BARGE)
    assert (ending.over_speech, ending.missed_barge_in) == (False, False)


MHM = _line((0.02, 0.45), category="backchannel", barge_in_ms=1500, backchannel=True)


def test_a_backchannel_the_reply_went_on_through() -> None:
    o = _one([*SPEAKING, (36.0, "listening")], (31.0, 31.6), MHM)
    assert (o.kind, o.over_speech, o.stopped) == ("backchannel", True, False)
    assert not o.false_barge_in
    assert o.premature is None and o.v2v_ms is None  # not a turn


def test_a_backchannel_that_stopped_the_reply_is_a_false_barge_in() -> None:
    o = _one([*SPEAKING, (31.7, "user_speaking")], (31.0, 31.6), MHM)
    assert o.false_barge_in and o.stop_ms == 680.0
    # On its final transcript 2 s after it ended ('Uh-uh' for espeak-ng's 'Uh-huh.'): the
    # reply stopped for it all the same (the grace is for barge-ins the caller talks on in)
    late = _one([*SPEAKING, (33.5, "user_speaking"), (33.5, "thinking")], (31.0, 31.6), MHM)
    assert late.false_barge_in and late.stop_ms == 2480.0


def test_lines_the_call_never_reached_are_unspoken() -> None:
    lines = [_line((0.1, 1.6)), _line((0.0, 0.5), category="one-word")]
    first, second = classify(
        _timeline([*GREETED, (10.3, "user_speaking")], [(10.0, 12.0)]),
        lines,
        scenario="s",
        voice="espeak",
    )
    assert first.spoken and not second.spoken
    assert (second.line, second.category, second.voice, second.premature) == (
        2,
        "one-word",
        "piper",  # the line's own voice
        None,
    )


def _outcomes() -> list[LineOutcome]:
    def o(category: str, kind: str, **kw: object) -> LineOutcome:
        return LineOutcome("s", "piper", 1, category, kind, "t", spoken=True, **kw)  # type: ignore[arg-type]

    return [
        o("question", "turn", premature=False, v2v_ms=500.0, node_v2v_ms=520.0),
        o("question", "turn", premature=False, v2v_ms=700.0, node_v2v_ms=720.0),
        o("numbers", "turn", premature=True, cut_in_ms=800.0, v2v_ms=900.0),
        o("numbers", "turn", premature=False, v2v_ms=1100.0),
        o("barge-in", "barge_in", premature=False, over_speech=True, stopped=True, stop_ms=650.0),
        o("barge-in", "barge_in", premature=False, over_speech=True, stopped=False),
        o("barge-in", "barge_in", premature=False, over_speech=False),
        o("backchannel", "backchannel", over_speech=True, stopped=False),
        o("backchannel", "backchannel", over_speech=True, stopped=True, stop_ms=700.0),
        LineOutcome("s", "espeak", 2, "question", "turn", "never said"),
    ]


def test_the_report_counts_per_category_and_voice() -> None:
    report = build_report(_outcomes(), machine=MACHINE, extra={"voice_names": ["piper"]})
    cats = report["categories"]
    assert list(cats) == ["numbers", "question", "backchannel", "barge-in"]
    assert cats["question"]["lines"] == 3 and cats["question"]["spoken"] == 2
    assert cats["question"]["v2v_ms"] == {"n": 2, "p50": 600.0, "p95": 690.0}
    assert cats["numbers"]["premature_cut_ins"] == {"n": 1, "of": 2, "pct": 50.0}
    assert cats["barge-in"]["missed_barge_ins"] == {"n": 1, "of": 2, "pct": 50.0}
    assert cats["barge-in"]["not_over_speech"] == 1
    assert cats["barge-in"]["barge_in_stop_ms"]["p50"] == 650.0
    assert cats["backchannel"]["false_barge_ins"] == {"n": 1, "of": 2, "pct": 50.0}
    total = report["total"]
    assert total["premature_cut_ins"] == {"n": 1, "of": 7, "pct": 14.3}
    assert report["voices"]["espeak"]["spoken"] == 0
    assert report["targets"]["premature_cut_ins"]["pass"] is False
    assert report["targets"]["false_barge_ins"] == {
        "limit_pct": 5.0,
        "value_pct": 50.0,
        "pass": False,
    }
    assert report["lines"][2]["premature"] is True
    assert report["lines"][5]["missed_barge_in"] is True


def test_the_markdown_has_a_row_per_category_and_the_failed_lines(tmp_path: Path) -> None:
    report = build_report(_outcomes(), machine=MACHINE)
    md = render_markdown(report)
    assert "| numbers | 2 | 1/2 (50.0 %) | - | - | 1000 | 1090 | - | - |" in md
    assert "| barge-in | 3 | 0/3 (0.0 %) | 1/2 (50.0 %) | - | - | - | - | 650 |" in md
    assert "| all | 9 | 1/7 (14.3 %) | 1/2 (50.0 %) | 1/2 (50.0 %) |" in md
    assert "- premature cut-ins: 14.3 % (<= 3 %) FAIL" in md
    assert "| question | 2 | 0/2 (0.0 %) | - | - | 600 | 690 | 620 | - |" in md
    assert "- `s` line 1 (piper): premature cut-in 800 ms before the end: t" in md
    assert "missed barge-in" in md and "false barge-in" in md
    json_path, md_path = write_report(report, tmp_path / "out")
    assert json.loads(json_path.read_text(encoding="utf-8"))["total"]["spoken"] == 9
    assert md_path.read_text(encoding="utf-8") == md


def _scenario_dir(tmp_path: Path) -> Path:
    d = tmp_path / "set"
    d.mkdir()
    (d / "a.toml").write_text('name = "a"\nlines = ["Hi."]\n', encoding="utf-8")
    (d / "b.toml").write_text(
        'name = "b"\nlines = [{ text = "Mhm.", backchannel = true, barge_in_ms = 900 }]\n',
        encoding="utf-8",
    )
    return d


def test_cli_runs_every_scenario_file_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[tuple[list[tuple[str, str]], int]] = []

    async def fake_run(
        settings: object, calls: Callable[[Mapping[str, Render]], Calls], runs: int
    ) -> tuple[list[LineOutcome], list[dict[str, object]], dict[str, object]]:
        renders = {"piper": lambda text: tone(0.2), "espeak": lambda text: tone(0.1)}
        rendered = calls(renders)
        asked.append(([(s.name, voice) for s, voice, _ in rendered], runs))
        assert all(len(lines) == 1 for _, _, lines in rendered)
        return _outcomes(), [{"run": 1}], dict(MACHINE)

    monkeypatch.setattr(bench.turns, "run_turn_taking", fake_run)
    out = tmp_path / "out"
    d = _scenario_dir(tmp_path)
    assert main(["turns", "--scenarios", str(d), "--out", str(out), "--runs", "1"]) == 0
    assert main(["turns", "--scenarios", str(d), "--out", str(out), "--voice", "espeak"]) == 0
    both = [("a", "piper"), ("a", "espeak"), ("b", "piper"), ("b", "espeak")]
    assert asked == [(both, 1), ([("a", "espeak"), ("b", "espeak")], 3)]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["voice_names"] == ["espeak"]
    assert report["scenarios"] == [str(d / "a.toml"), str(d / "b.toml")]
    printed = capsys.readouterr().out
    assert "| numbers | 2 | 1/2 (50.0 %)" in printed and str(out / "report.md") in printed


def test_cli_scenario_directory_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "out")
    assert main(["turns", "--scenarios", str(tmp_path / "none"), "--out", out]) == 2
    assert "not a directory" in capsys.readouterr().err
    d = _scenario_dir(tmp_path)
    (d / "c.toml").write_text('name = "c"\nagent = "nobody"\nlines = ["Hi."]\n', encoding="utf-8")
    assert main(["turns", "--scenarios", str(d), "--out", out]) == 2
    assert "c.toml: unknown agent 'nobody'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["turns", "--scenarios", str(d), "--scenario", "x.toml", "--out", out])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["turns", "--scenarios", str(d), "--voice", "festival", "--out", out])
    assert "invalid choice: 'festival'" in capsys.readouterr().err
