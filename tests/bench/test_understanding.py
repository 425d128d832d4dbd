"""voicenode-bench understanding: its lines file, the telephone band and the scoring (no
models: the bench itself runs them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.understanding import (
    build_report,
    decode_times,
    default_lines_path,
    expected_action,
    load_lines,
    run_line,
    telephone,
    understand,
)
from bench.understanding_rescore import compare, rescore
from bench.understanding_rescore import main as rescore_main
from bench.understanding_score import (
    edit_distance,
    render_markdown,
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


async def test_held_out_lines_are_marked_in_the_lines_file() -> None:
    _, lines = load_lines(default_lines_path())
    held = [line for line in lines if line.held_out]
    assert len(held) >= 20
    assert {line.domain for line in held} == {"clinic", "pizzeria"}
    assert not {line.text for line in held} & {line.text for line in lines if not line.held_out}


def test_the_report_shows_held_out_lines_apart() -> None:
    tuned = _saved_record("What are your hours?", "What are your hours?", "hours", "hours")
    held = _saved_record("Are you open late?", "Are you open late?", "hours", "none")
    held["held_out"] = True
    tuned["text_intent"], held["text_intent"] = "hours", "hours"
    records = [
        {**r, **{c: r["after"] for c in ("before", "context_only", "linear_upsampling")}}
        for r in (tuned, held)
    ]
    report = build_report(records, stt_model="m", source="s", seconds=1.0)
    assert report["by_set"]["tuned"]["after"]["intent_accuracy"] == 1.0
    assert report["by_set"]["held_out"]["after"]["intent_accuracy"] == 0.0
    markdown = render_markdown(report)
    assert "(1 held-out utterances)" in markdown
    assert "| held_out | after | 0.0 % | 0.0 % | 0 |" in markdown
    assert report["text_intent_accuracy"] == {"tuned": 1.0, "held_out": 1.0}
    assert "perfect transcript, vocabulary on): 100.0 % (tuned), 100.0 % (held_out)" in markdown


async def test_the_fresh_held_out_group_is_marked_apart() -> None:
    _, lines = load_lines(default_lines_path())
    fresh = [line for line in lines if line.held_out_group == "round4"]
    assert len(fresh) >= 20
    assert all(line.held_out for line in fresh)
    assert {line.domain for line in fresh} == {"clinic", "pizzeria"}
    assert {line.intent for line in fresh} >= {"goodbye", "human", "change", "none"}


def test_the_report_shows_each_held_out_group_apart() -> None:
    tuned = _saved_record("What are your hours?", "What are your hours?", "hours", "hours")
    old = _saved_record("Are you open late?", "Are you open late?", "hours", "hours")
    fresh = _saved_record("Open on Sunday?", "Open on Sunday?", "hours", "none")
    old["held_out"] = fresh["held_out"] = True
    fresh["held_out_group"] = "round4"
    for r in (tuned, old, fresh):
        r["text_intent"] = "hours"
    records = [
        {**r, **{c: r["after"] for c in ("before", "context_only", "linear_upsampling")}}
        for r in (fresh, tuned, old)
    ]
    report = build_report(records, stt_model="m", source="s", seconds=1.0)
    assert list(report["by_set"]) == ["tuned", "held_out", "held_out_round4"]
    assert report["by_set"]["held_out"]["after"]["intent_accuracy"] == 1.0
    assert report["by_set"]["held_out_round4"]["after"]["intent_accuracy"] == 0.0
    markdown = render_markdown(report)
    assert "(2 held-out utterances)" in markdown
    assert "| held_out_round4 | after | 0.0 % | 0.0 % | 0 |" in markdown


class _Heard:
    """A transcriber that writes the same line every time and notes the contexts it got."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.contexts: list[str] = []

    async def transcribe(
        self, audio: np.ndarray[Any, Any], *, final: bool, context: str = ""
    ) -> str:
        self.contexts.append(context)
        return self.text


async def test_a_line_runs_the_wide_beam_condition_beside_after() -> None:
    specs, lines = load_lines(default_lines_path())
    line = next(x for x in lines if x.text == "What are your hours?")
    narrow, wide = _Heard("What are your hours?"), _Heard("What are your hours, please?")
    voice = ("tone", lambda _text: np.zeros(16000, dtype=np.int16))
    async with httpx.AsyncClient() as http:
        record = await run_line(line, specs["clinic"], voice, narrow, http, wide)
    assert record["after"]["hyp"] == "What are your hours?"
    assert record["after_beam5"]["hyp"] == "What are your hours, please?"
    assert record["after_beam5"]["intent"] == "hours"
    assert set(record["decode_ms"]) == {"after", "after_beam5"}
    assert wide.contexts == [narrow.contexts[1]]  # the wide decode had the same context
    assert "Bright Smile Dental" in wide.contexts[0]
    assert record["text_intent"] == "hours"


def test_decode_times_are_paired_with_after() -> None:
    records = [
        {"decode_ms": {"after": 100.0, "after_beam5": 150.0}},
        {"decode_ms": {"after": 200.0, "after_beam5": 260.0}},
    ]
    times = decode_times(records)
    assert times["after"]["median"] == 150.0
    assert times["after_beam5"]["median"] == 205.0
    assert times["after_beam5"]["median_minus_after"] == 55.0
    assert times["after_beam5"]["n"] == 2


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


def _saved_record(text: str, heard: str, intent: str, got: str) -> dict[str, Any]:
    """One utterance as report.json saves it, with the 'after' condition only."""
    return {
        "domain": "clinic",
        "voice": "espeak-ng",
        "text": text,
        "intent": intent,
        "digits": "",
        "ref_written": words_as_written(text),
        "ref_words": words_normalised(text),
        "after": {
            "hyp": heard,
            "hyp_written": words_as_written(heard),
            "hyp_words": words_normalised(heard),
            "intent": got,
            "action": None,
            "wrong_irreversible": False,
            "digits": None,
            "digits_ok": False,
        },
    }


async def test_rescore_routes_the_saved_transcripts_again() -> None:
    saved = [
        _saved_record(
            "Do you take Delta Dental?", "Do you take Melter Mendel?", "insurance", "none"
        ),
        _saved_record("No, that's all. Goodbye.", "No, that's all. Goodbye.", "goodbye", "goodbye"),
    ]
    again = await rescore(saved, default_lines_path())
    assert again[0]["after"]["intent"] == "insurance"  # heard by sound today
    assert again[0]["after"]["hyp_words"] == words_normalised("do you take delta dental")
    assert again[1]["after"]["intent"] == "goodbye"
    assert again[1]["after"]["action"] == "end"
    assert saved[0]["after"]["intent"] == "none"  # the saved records are left as they were
    out = compare(saved, again)
    assert "all saved: intent 50.0 % (2)" in out[0]
    assert "all now:   intent 100.0 % (2)" in out[1]
    assert any(line.startswith("  fixed (was none) [espeak-ng] 'Do you take") for line in out)
    assert out[-1] == "missed:"


def test_rescore_cli_reads_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    record = _saved_record("What are your hours?", "What are your hours?", "hours", "hours")
    report.write_text(json.dumps({"records": [record]}))
    assert rescore_main([str(report)]) == 0
    assert "all now:   intent 100.0 % (1)" in capsys.readouterr().out
    assert rescore_main([str(report), "--condition", "before"]) == 2


def test_rescore_adds_another_runs_records_and_writes_the_report(tmp_path: Path) -> None:
    first, second, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "out.json"
    seen = _saved_record("What are your hours?", "What are your hours?", "hours", "none")
    new = _saved_record("Nothing else, goodbye.", "Nothing else, goodbye.", "goodbye", "none")
    new |= {"held_out": True, "held_out_group": "round9"}
    first.write_text(json.dumps({"records": [seen], "stt_model": "m", "seconds": 2.0}))
    second.write_text(json.dumps({"records": [new], "seconds": 1.0}))
    assert rescore_main([str(first), "--add", str(second), "--write", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_utterances"] == 2 and report["seconds"] == 3.0
    assert [r["after"]["intent"] for r in report["records"]] == ["hours", "goodbye"]
    assert [r["text_intent"] for r in report["records"]] == ["hours", "goodbye"]
    assert report["by_set"]["held_out_round9"]["after"]["intent_accuracy"] == 1.0
    assert report["by_set"]["held_out_round9"]["after"]["irreversible_taken"] == 1
