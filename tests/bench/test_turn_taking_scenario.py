"""Scenario lines for the turn-taking set: parts with pauses, categories, voices, backchannels;
the set in `bench/scenarios/turn_taking` itself. No models: voices are tones."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agents.catalog import load_specs
from bench.scenario import (
    Line,
    Render,
    ScenarioError,
    load_scenario,
    speak_lines,
    voiced_span,
)
from bench.turn_taking_run import load_scenario_dir
from bench.turns import to_caller_lines

from .wire_fakes import silence, tone

SET = Path(__file__).resolve().parents[2] / "bench" / "scenarios" / "turn_taking"


def _write(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(f'name = "x"\nphone_line = false\n{body}', encoding="utf-8")
    return f


def test_lines_carry_parts_category_voice_and_backchannel(tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        'category = "numbers"\nlines = [\n'
        '  { parts = ["My number is five five five", 700, "two one two", 600, "three four"] },\n'
        '  { text = "Mhm.", backchannel = true, barge_in_ms = 1500, category = "backchannel" },\n'
        '  { text = "Hi.", voice = "espeak" },\n'
        "]\n",
    )
    s = load_scenario(f)
    first, mhm, hi = s.items
    assert first.parts == ("My number is five five five", 700, "two one two", 600, "three four")
    assert first.said == "My number is five five five two one two three four"
    assert s.texts[0] == first.said
    assert (first.category, s.category) == ("", "numbers")
    assert mhm == Line(text="Mhm.", backchannel=True, barge_in_ms=1500, category="backchannel")
    assert hi.voice == "espeak" and first.voice is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{ parts = [300, "a"] }', "line 2: `parts` must start and end with text"),
        ('{ parts = ["a", 300] }', "line 2: `parts` must start and end with text"),
        ('{ parts = ["a", 100, " "] }', "line 2: a text part of `parts` is empty"),
        ('{ text = "a", parts = ["b"] }', "line 2: `parts` replaces `text` and `wav`"),
        ('{ parts = ["a", 20000, "b"] }', r"line 2: .*<= 10000 \(at `parts\[1\]`\)"),
        (
            '{ parts = ["a", true, "b"] }',
            r"line 2: Expected `int \| str`, got `bool`.* \(at `parts\[1\]`\)",
        ),
        ('{ text = "Mhm.", backchannel = true }', "line 2: a backchannel needs `barge_in_ms`"),
        (
            '{ text = "a", voice = "festival" }',
            r"line 2: Invalid enum value 'festival' \(at `voice`\)",
        ),
        ('{ text = "a", speed = 2 }', "line 2: Object contains unknown field `speed`"),
        ('{ category = "list" }', "line 2: a line needs `text` or `wav`"),
    ],
)
def test_invalid_lines_are_named_by_their_number(tmp_path: Path, line: str, problem: str) -> None:
    f = _write(tmp_path, f'lines = ["Hello.", {line}]\n')
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(f)


def test_parts_are_spoken_with_their_silences_and_voices_are_picked(tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        'lines = [\n  { parts = ["one", 700, "two"], category = "numbers" },\n'
        '  { text = "Hi.", voice = "espeak" },\n  "Bye.",\n]\n',
    )
    said: list[tuple[str, str]] = []

    def voice(name: str, seconds: float) -> Render:
        def render(text: str) -> npt.NDArray[np.int16]:
            # Each word a tone, 100 ms of silence between words.
            said.append((name, text))
            words = [tone(seconds) for _ in text.split()]
            gaps = [silence(0.1)] * len(words)
            return np.concatenate([x for pair in zip(gaps, words, strict=True) for x in pair][1:])

        return render

    piper, espeak = voice("piper", 0.5), voice("espeak", 0.3)
    voices = {"piper": piper, "espeak": espeak}
    spoken = speak_lines(load_scenario(f), piper, voices=voices, voice="piper")
    # The line rendered whole (and its first part alone, to time the boundary).
    assert said == [("piper", "one two"), ("piper", "one"), ("espeak", "Hi."), ("piper", "Bye.")]
    assert len(spoken[0].samples) == 8000 + 700 * 16 + 1600 + 8000
    assert np.all(spoken[0].samples[8000 : 8000 + 700 * 16 + 1600] == 0)
    assert [x.voice for x in spoken] == ["piper", "espeak", "piper"]
    assert [x.category for x in spoken] == ["numbers", "", ""]
    assert spoken[0].text == "one two"
    assert spoken[0].voiced == pytest.approx((0.0, 1.8))  # 0.5 s, 0.7 + 0.1 s of silence, 0.5 s
    with pytest.raises(ScenarioError, match="line 2: no 'espeak' voice"):
        speak_lines(load_scenario(f), piper, voice="piper")


def test_voiced_span_finds_the_first_and_last_speech() -> None:
    audio = np.concatenate([silence(0.25), tone(0.5), silence(0.3), tone(0.2, amplitude=800)])
    assert voiced_span(audio) == pytest.approx((0.25, 1.25))
    # Quieter than 30 dB under the loudest window is not speech.
    faint = np.concatenate([tone(0.5), silence(0.2), tone(0.2, amplitude=200)])
    assert voiced_span(faint) == pytest.approx((0.0, 0.5))
    assert voiced_span(silence(1.0)) == (0.0, 0.0)


def test_caller_lines_take_the_cues_of_the_scenario(tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        'pause_ms = 250\nlines = ["Hi.", '
        '{ text = "Mhm.", backchannel = true, barge_in_ms = 1500 }]\n',
    )
    spoken = speak_lines(load_scenario(f), lambda text: tone(0.2))
    plain, mhm = to_caller_lines(spoken)
    assert (plain.barge_in_after, plain.pause_s, plain.backchannel) == (None, 0.25, False)
    assert (mhm.barge_in_after, mhm.backchannel) == (1.5, True)


def test_the_turn_taking_set_has_forty_lines_over_every_category() -> None:
    found = load_scenario_dir(SET)
    specs = load_specs(None)
    categories: Counter[str] = Counter()
    for path, scenario in found:
        assert scenario.agent in specs, path
        for line in scenario.items:
            categories[line.category or scenario.category] += 1
            assert line.voice is None  # every line is said in both voices
    assert sum(categories.values()) >= 40
    wanted = {"hesitation", "numbers", "list", "question", "one-word", "backchannel", "barge-in"}
    assert set(categories) == wanted
    assert all(n >= 5 for n in categories.values()), categories
    lines = [line for _, s in found for line in s.items]
    assert sum(1 for line in lines if line.parts) >= 10  # pauses inside the line
    assert sum(1 for line in lines if line.backchannel) == categories["backchannel"]
    barge = next(s for _, s in found if s.category == "barge-in")
    assert barge.items[0].barge_in_ms is not None  # the first line talks over the greeting


def test_a_scenario_directory_needs_scenario_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not a directory"):
        load_scenario_dir(tmp_path / "none")
    with pytest.raises(ScenarioError, match=r"no scenario files \(\*\.toml\)"):
        load_scenario_dir(tmp_path)
    (tmp_path / "b.toml").write_text('name = "b"\nlines = ["Hi."]\n', encoding="utf-8")
    (tmp_path / "a.toml").write_text('name = "a"\nlines = [{ voice = "x" }]\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"a\.toml: line 1: Invalid enum value 'x'"):
        load_scenario_dir(tmp_path)
