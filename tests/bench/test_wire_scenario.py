"""Scenarios with expected replies, barge-in points and WAV lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.scenario import (
    WIRE_SCENARIO,
    Line,
    ScenarioError,
    load_scenario,
    speak_lines,
)
from media.wav import write_wav

from .wire_fakes import tone


def test_the_default_wire_scenario_books_with_a_barge_in() -> None:
    s = load_scenario(default=WIRE_SCENARIO)
    assert s.name == "receptionist_wire" and s.agent == "receptionist"
    items = s.items
    assert len(items) == 7
    assert [i for i, x in enumerate(items) if x.barge_in_ms is not None] == [1]
    assert items[1].barge_in_ms == 1200
    assert all(x.expect for x in items)
    assert s.expect_greeting.startswith("Thanks for calling")
    assert s.texts[-1] == "No, that's all. Goodbye."


def test_lines_are_strings_or_tables(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        'name = "x"\npause_ms = 100\nlines = [\n'
        '  "Hello.",\n'
        '  { text = "Stop.", barge_in_ms = 300, expect = "okay" },\n'
        '  { wav = "a.wav", text = "ref", pause_ms = 50 },\n'
        "]\n",
        encoding="utf-8",
    )
    s = load_scenario(f)
    assert s.items[0] == Line(text="Hello.")
    assert s.items[1] == Line(text="Stop.", barge_in_ms=300, expect="okay")
    # A WAV path is relative to the scenario file.
    assert s.items[2].wav == str(tmp_path / "a.wav")
    assert s.texts == ("Hello.", "Stop.", "ref")


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ('[{ expect = "hi" }]', "needs `text` or `wav`"),
        ('[{ text = "a", barge_in_ms = -5 }]', "barge_in_ms"),
        ('[{ text = "a", speed = 2 }]', "unknown field `speed`"),
    ],
)
def test_bad_lines_name_the_problem(tmp_path: Path, lines: str, problem: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(f'name = "x"\nlines = {lines}\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(f)


def test_speak_lines_renders_text_and_reads_wavs(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", tone(0.5, rate=8000), 8000)
    f = tmp_path / "s.toml"
    f.write_text(
        'name = "x"\nphone_line = false\npause_ms = 150\n'
        'lines = ["Hello.", { wav = "a.wav", text = "ref", barge_in_ms = 400 }]\n',
        encoding="utf-8",
    )
    rendered: list[str] = []

    def render(text: str) -> np.ndarray:
        rendered.append(text)
        return tone(0.25)

    spoken = speak_lines(load_scenario(f), render)
    assert rendered == ["Hello."]
    assert [len(x.samples) for x in spoken] == [4000, 8000]  # the WAV at 16 kHz
    assert [x.pause_ms for x in spoken] == [150, 150]
    assert [x.barge_in_ms for x in spoken] == [None, 400]
    assert spoken[1].text == "ref"
    missing = tmp_path / "m.toml"
    missing.write_text('name = "x"\nlines = [{ wav = "nope.wav" }]\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="line 1: cannot read"):
        speak_lines(load_scenario(missing), render)


def test_phone_line_band_limits_the_audio(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nlines = ["Hi."]\n', encoding="utf-8")
    high = tone(0.5, hz=6000.0)
    (spoken,) = speak_lines(load_scenario(f), lambda text: high)

    # 6 kHz does not survive an 8 kHz telephone line (past the filters' edge transients).
    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x[1600:-1600].astype(np.float64) ** 2)))

    assert rms(spoken.samples) < 0.05 * rms(high)
