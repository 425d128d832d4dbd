"""The answering-machine bench's set and report (`bench.amd_set`, `bench.amd_report`), without
engines: clips rendered from a stand-in voice, outcomes summarised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.amd import Outcome
from bench.amd_report import build_report, render_markdown
from bench.amd_set import BEEPS, HELDOUT, TUNE, clips
from bench.cli import main
from media.frames import SAMPLE_RATE
from media.tone import BeepDetector


def tone_voice(text: str) -> np.ndarray:
    """A stand-in voice: 60 ms of a 300 Hz buzz per letter."""
    n = int(0.06 * SAMPLE_RATE) * len(text)
    t = np.arange(n) / SAMPLE_RATE
    return (8000 * np.sign(np.sin(2 * np.pi * 300 * t))).astype(np.int16)


def test_every_text_in_every_voice_with_the_beeps_in_turn() -> None:
    got = list(clips({"a": tone_voice, "b": tone_voice}))
    assert len(got) == 2 * (len(TUNE) + len(HELDOUT))
    assert {c.part for c in got} == {"tune", "heldout"}
    names = {c.id.split("/")[0] for c in got}
    assert len(names) == len(TUNE) + len(HELDOUT)  # no text in both parts
    machines = [c for c in got if c.kind == "machine"]
    assert {c.beep for c in machines} == set(BEEPS)
    assert all(c.beep is None and c.beep_end_s is None for c in got if c.kind == "human")


def test_a_clips_beep_is_the_same_whichever_parts_are_run() -> None:
    every = {c.id: c.beep for c in clips({"a": tone_voice})}
    held_out = {c.id: c.beep for c in clips({"a": tone_voice}, ("heldout",))}
    assert any(b is not None for b in held_out.values())
    assert held_out == {i: every[i] for i in held_out}


def test_a_clips_beep_ends_where_the_set_says() -> None:
    clip = next(c for c in clips({"a": tone_voice}, ("tune",)) if c.beep is not None)
    assert clip.beep is not None and clip.beep_end_s is not None
    detector = BeepDetector()
    beeps = []
    for i in range(len(clip.audio) // 320):
        beep = detector.feed(clip.audio[i * 320 : (i + 1) * 320], i * 0.02)
        if beep is not None:
            beeps.append(beep)
    (beep,) = beeps  # through G.711 and the line noise, one beep, where it was put
    assert abs(beep.ended_s - clip.beep_end_s) <= 0.02
    assert abs(beep.hz - clip.beep.hz) <= 20
    assert clip.speech_end_s <= clip.greeting_end_s < clip.beep_end_s


def test_the_report_counts_per_class_and_part() -> None:
    outcomes = [
        Outcome("hello/a", "human", "tune", "a", "human", "short_greeting", 1500.0,
                greeting_gap_ms=820.0),
        Outcome("long/a", "human", "heldout", "a", "machine", "long_greeting", 3300.0),
        Outcome("vm/a", "machine", "tune", "a", "machine", "beep", 3000.0,
                message_after_beep_ms=18.0, beep_hz=1000.0, beep_ms=500),
    ]  # fmt: skip
    report = build_report(outcomes, meta={"stt_ms": 300, "tts_ms": 250}, walls={"stt": [1.0]})
    assert report["all"]["correct"] == 2 and report["all"]["n"] == 3
    assert report["parts"]["tune"]["accuracy"] == 1.0
    assert report["parts"]["heldout"]["classes"]["human"]["results"] == {"machine": 1}
    assert report["all"]["message_after_beep_ms"]["max"] == 18.0
    assert report["met"] == {
        "accuracy": False,
        "human_decision_p50_ms": True,
        "message_after_beep_ms": True,
    }
    assert [m["id"] for m in report["mistakes"]] == ["long/a"]
    assert "long/a (heldout): human taken as machine" in render_markdown(report)


def test_the_cli_takes_amd_and_refuses_an_out_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    out.write_text("")
    assert main(["amd", "--out", str(out), "--part", "tune"]) == 2
    assert "--out must be a directory" in capsys.readouterr().err
