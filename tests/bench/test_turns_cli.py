"""`voicenode-bench turns`: scenarios, reports from (fake) simulated calls, argument errors.

No models run here: the simulated calls are fake `SimulationResult`s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bench.turns
from bench.cli import main
from bench.report import write_report
from bench.turns import (
    RunRecord,
    Scenario,
    ScenarioError,
    load_scenario,
    record_run,
    turns_report,
)
from pipeline.events import CallEnded
from voicenode.simulate import SimulationResult, Turn

from .test_report import MACHINE, marks

BOOKING = [
    "Hi, I'd like to book a cleaning.",
    "My name is Maria Garcia.",
    "Next Tuesday.",
    "At two PM.",
    "Yes, that's right.",
    "No, that's all. Goodbye.",
]


def fake_result(v2v_windows: list[float], *, reason: str = "completed") -> SimulationResult:
    """A call: the greeting, then per window a caller turn and the agent's answer with marks
    (turn window `w`, STT 125 ms, agent 0, TTS 250 ms, playout 15.625 ms)."""
    turns = [Turn("agent", "Thanks for calling Bright Smile Dental.", turn=0)]
    for i, w in enumerate(v2v_windows, start=1):
        m = marks(start=10.0 * i, window=w, stt=0.125, agent=0.0, tts=0.25, playout=0.015625)
        user = {k: v for k, v in m.items() if k in ("speech_end", "endpoint", "final_transcript")}
        turns.append(Turn("user", f"line {i}", marks=user, turn=i))
        turns.append(Turn("agent", f"reply {i}", marks=m, turn=i))
    return SimulationResult(
        turns=turns,
        agent_audio=np.zeros(0, dtype=np.int16),
        ended=CallEnded(reason=reason, duration_s=30.0),
        call=None,  # type: ignore[arg-type]
        events=[],
    )


def test_the_default_scenario_is_the_booking_flow() -> None:
    s = load_scenario()
    assert s.name == "receptionist_booking"
    assert s.agent == "receptionist"
    assert list(s.lines) == BOOKING
    assert s.phone_line is True


def test_scenario_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match=r"nope\.toml: scenario file not found"):
        load_scenario(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text("lines = [", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.toml: not valid TOML"):
        load_scenario(bad)
    bad.write_text('name = "x"\nlines = ["hi"]\nspeed = 2\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="unknown field `speed`"):
        load_scenario(bad)
    bad.write_text('name = "x"\nlines = []\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"lines"):
        load_scenario(bad)


def test_record_run_measures_answered_turns_only() -> None:
    result = fake_result([0.25, 0.5])
    # A third answer cut short before its first frame went out: not measured, but counted.
    cut = marks(start=40.0)
    del cut["first_frame_out"]
    result.turns.append(Turn("agent", "Goodb", interrupted=True, marks=cut, turn=3))
    rec = record_run(2, result, wall_s=31.25)
    assert rec.ended == "completed"
    assert [(s.run, s.turn) for s in rec.samples] == [(2, 1), (2, 2)]
    assert rec.skipped_turns == 1
    assert rec.user_texts == ["line 1", "line 2"]
    assert [s.stages_ms["voice_to_voice"] for s in rec.samples] == [640.625, 890.625]
    assert rec.as_json()["measured_turns"] == 2


def test_a_reply_in_several_transcripts_is_measured_once() -> None:
    result = fake_result([0.25])
    answer = result.turns[-1]
    result.turns.append(Turn("agent", "Is that right?", marks=dict(answer.marks), turn=answer.turn))
    rec = record_run(1, result, wall_s=10.0)
    assert [(s.run, s.turn) for s in rec.samples] == [(1, 1)]
    assert rec.skipped_turns == 0


def test_report_files_from_fake_simulated_calls(tmp_path: Path) -> None:
    scenario = Scenario(name="demo", lines=("a", "b"))
    records = [
        record_run(1, fake_result([0.25, 0.25]), wall_s=20.0),
        record_run(2, fake_result([0.5, 0.5], reason="hangup"), wall_s=21.0),
    ]
    report = turns_report(scenario, records, machine=MACHINE, runs_requested=2, source="demo.toml")
    json_path, md_path = write_report(report, tmp_path / "out")
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc["n_turns"] == 4
    # v2v = window + 125 + 0 + 250 + 15.625: 640.625, 640.625, 890.625, 890.625.
    assert doc["v2v_ms"]["p50"] == 765.625
    assert doc["v2v_ms"]["mean"] == 765.625
    assert doc["v2v_ms"]["p95"] == 890.625
    assert doc["stages_ms"]["stt_wait"]["p99"] == 125.0
    assert doc["overhead_ms"] == {
        "n": 4,
        "mean": 15.625,
        "min": 15.625,
        "max": 15.625,
        "p50": 15.625,
        "p95": 15.625,
        "p99": 15.625,
    }
    assert doc["targets"]["v2v_p50_ms"]["pass"] is False
    assert doc["targets"]["overhead_p50_ms"]["pass"] is True
    assert doc["scenario"] == {
        "name": "demo",
        "agent": "receptionist",
        "lines": 2,
        "phone_line": True,
        "file": "demo.toml",
    }
    assert [r["ended"] for r in doc["runs"]] == ["completed", "hangup"]
    assert doc["machine"] == MACHINE
    md = md_path.read_text(encoding="utf-8")
    assert "Scenario `demo` (agent `receptionist`), 2 run(s), 4 answered turns." in md
    assert "| voice_to_voice | 4 | 765.6 | 765.6 | 890.6 | 890.6 | 890.6 |" in md
    assert "| voice_to_voice p50 | 765.6 | <= 700 | FAIL |" in md
    assert "- run 2: ended `hangup`, 2 measured turn(s), 21.0 s, None TTS cache hit(s)" in md


def test_cli_writes_the_reports_and_prints_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[str, int]] = []

    async def fake_run_turns(
        settings: object, scenario: Scenario, runs: int
    ) -> tuple[list[RunRecord], dict[str, object]]:
        calls.append((scenario.name, runs))
        records = [record_run(r, fake_result([0.25] * 6), wall_s=30.0) for r in range(1, runs + 1)]
        return records, dict(MACHINE)

    monkeypatch.setattr(bench.turns, "run_turns", fake_run_turns)
    out = tmp_path / "bench"
    assert main(["turns", "--out", str(out), "--runs", "2"]) == 0
    assert calls == [("receptionist_booking", 2)]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["n_turns"] == 12
    assert report["runs_requested"] == 2
    assert report["scenario"]["file"].endswith("receptionist_booking.toml")
    assert (out / "report.md").is_file()
    printed = capsys.readouterr().out
    assert "voice_to_voice" in printed and "640.6" in printed
    assert "target voice_to_voice p50: 640.6 ms (<= 700 ms) PASS" in printed
    assert str(out / "report.json") in printed


def test_cli_exits_1_when_no_turn_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def no_turns(
        settings: object, scenario: Scenario, runs: int
    ) -> tuple[list[RunRecord], dict[str, object]]:
        return [record_run(1, fake_result([], reason="failed"), wall_s=1.0)], dict(MACHINE)

    monkeypatch.setattr(bench.turns, "run_turns", no_turns)
    assert main(["turns", "--out", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["n_turns"] == 0
    capsys.readouterr()


def test_unknown_scenario_file_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["turns", "--out", str(tmp_path / "o"), "--scenario", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"voicenode-bench: {missing}: scenario file not found\n"
    assert not (tmp_path / "o").exists()


def test_invalid_scenario_and_unknown_agent_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nlines = ["hi"]\nspeed = 2\n', encoding="utf-8")
    assert main(["turns", "--out", str(tmp_path), "--scenario", str(bad)]) == 2
    assert "unknown field `speed`" in capsys.readouterr().err
    other = tmp_path / "other.toml"
    other.write_text('name = "x"\nagent = "nobody"\nlines = ["hi"]\n', encoding="utf-8")
    assert main(["turns", "--out", str(tmp_path), "--scenario", str(other)]) == 2
    err = capsys.readouterr().err
    assert "unknown agent 'nobody'" in err and "receptionist" in err


def test_bad_config_and_out_that_is_a_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "node.toml"
    conf.write_text("[stt]\nbeam_size = 99\n", encoding="utf-8")
    assert main(["turns", "--out", str(tmp_path), "--config", str(conf)]) == 2
    assert "configuration error" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("", encoding="utf-8")
    assert main(["turns", "--out", str(afile)]) == 2
    assert "--out must be a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["turns"], "the following arguments are required: --out"),
        (["turns", "--out", "x", "--runs", "0"], "--runs: must be at least 1, got 0"),
        (["turns", "--out", "x", "--runs", "two"], "--runs: expected a whole number"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_argument_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
