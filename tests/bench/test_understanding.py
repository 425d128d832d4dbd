"""voicenode-bench understanding: its lines file, the telephone band and the scoring (no
models: the bench itself runs them)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.understanding import (
    default_lines_path,
    expected_action,
    load_lines,
    telephone,
    understand,
)
from bench.understanding_score import (
    edit_distance,
    wer,
    words_as_written,
    words_normalised,
)


def test_the_lines_file_has_two_domains_and_enough_lines() -> None:
    specs, lines = load_lines(default_lines_path())
    assert set(specs) == {"clinic", "pizzeria"}
    assert len(lines) >= 60
    assert {line.domain for line in lines} == {"clinic", "pizzeria"}
    assert all(spec.vocabulary for spec in specs.values())
    assert expected_action(specs["clinic"], "goodbye") == "end"
    assert expected_action(specs["clinic"], "human") == "transfer"
    assert expected_action(specs["clinic"], "book") is None
    assert expected_action(specs["clinic"], "none") is None


def test_a_line_for_an_intent_the_agent_does_not_route_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lines.toml"
    path.write_text(
        '[[domain]]\nname = "clinic"\nagent = "receptionist"\n'
        '[[line]]\ndomain = "clinic"\ntext = "hi"\nintent = "pizza"\n'
    )
    with pytest.raises(ValueError, match="'pizza' is not routed"):
        load_lines(path)


async def test_understand_reports_the_intent_and_the_action() -> None:
    specs, _ = load_lines(default_lines_path())
    async with httpx.AsyncClient() as http:
        bye = await understand(specs["clinic"], "No, that's all. Goodbye.", http)
        urgent = await understand(specs["clinic"], "My two thirds, can someone see me today?", http)
        insured = await understand(specs["clinic"], "Do you take metal to metal?", http)
    assert bye == {"intent": "goodbye", "action": "end"}
    assert urgent["action"] is None
    assert insured == {"intent": "insurance", "action": None}


def test_the_telephone_band_keeps_length_and_drops_what_8_khz_cannot_carry() -> None:
    t = np.arange(16000) / 16000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    high = (8000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)
    for filtered in (True, False):
        assert abs(len(telephone(tone, filtered=filtered)) - len(tone)) <= 16
    kept = telephone(tone)[2000:14000].astype(np.float64)
    assert np.sqrt(np.mean(kept**2)) > 4000  # 440 Hz passes (8000 peak: ~5650 rms)
    gone = telephone(high)[2000:14000].astype(np.float64)
    assert np.sqrt(np.mean(gone**2)) < 200  # 6 kHz is above the 4 kHz band


def test_wer_normalisation() -> None:
    assert words_as_written("Five five five, one two!") == ["five", "five", "five", "one", "two"]
    assert words_normalised("Five five five, one two!") == ["55512"]
    assert words_normalised("555-12") == ["55512"]
    assert words_normalised("at two PM") == words_normalised("at 2 p.m.")
    assert words_normalised("ten thirty") == words_normalised("10:30")
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert wer([(["a", "b"], ["a", "b"]), (["c", "d"], ["d"])]) == 0.25
    assert wer([]) is None
