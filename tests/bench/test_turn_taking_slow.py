"""`voicenode-bench turns --scenarios DIR` end to end on the real models, in real time: a
2-line scenario directory (a question, then "mhm" over the answer) in both caller voices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main

pytestmark = pytest.mark.slow

SCENARIO = """
name = "tiny"
agent = "receptionist"
lines = [
  { text = "What are your opening hours?", category = "question" },
  { text = "Mhm.", category = "backchannel", backchannel = true, barge_in_ms = 1500 },
]
"""


def test_a_tiny_scenario_directory_in_both_voices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "tiny.toml").write_text(SCENARIO, encoding="utf-8")
    config = tmp_path / "node.toml"
    config.write_text("[tts]\ndeterministic = true\n", encoding="utf-8")  # the agent's voice
    out = tmp_path / "out"
    argv = ["turns", "--scenarios", str(scenarios), "--out", str(out), "--runs", "1"]
    assert main([*argv, "--config", str(config)]) == 0
    print(capsys.readouterr().out)  # the tables, for whoever runs this
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [c["voice"] for c in report["calls"]] == ["piper", "espeak"]
    lines = report["lines"]
    assert [(o["voice"], o["line"], o["kind"]) for o in lines] == [
        ("piper", 1, "turn"),
        ("piper", 2, "backchannel"),
        ("espeak", 1, "turn"),
        ("espeak", 2, "backchannel"),
    ]
    assert all(o["spoken"] for o in lines), lines
    for question in (lines[0], lines[2]):
        # Answered: a reply measured from the line's end, and classified as cut in or not.
        assert question["v2v_ms"] is not None and question["premature"] is not None, question
    for mhm in (lines[1], lines[3]):
        # Said 1.5 s into the hours answer (several seconds long): over the agent's speech,
        # and classified as stopping it or not.
        assert mhm["over_speech"] is True and mhm["stopped"] is not None, mhm
    assert report["categories"]["question"]["spoken"] == 2
    assert report["categories"]["backchannel"]["false_barge_ins"]["of"] == 2
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Turn-taking")
