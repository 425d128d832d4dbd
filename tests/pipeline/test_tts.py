"""Clause splitting for streamed agent text, leading-silence trimming, and the TTS engine."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest

from config.schema import TtsSettings
from media.frames import SAMPLE_RATE
from pipeline.tts import (
    Clause,
    ClauseSplitter,
    TtsEngine,
    TtsError,
    is_first_clause,
    trim_leading_silence,
)
from pipeline.tts_pool import FIRST


def split(chunks: list[str]) -> list[str]:
    s = ClauseSplitter()
    out: list[str] = []
    for c in chunks:
        out += s.push(c)
    return out + s.flush()


def test_sentences_come_out_as_soon_as_they_end() -> None:
    s = ClauseSplitter()
    assert s.push("Hello there.") == []  # the period is only an end once a space follows
    assert s.push(" How can") == ["Hello there."]
    assert s.push(" I help?") == []
    assert s.flush() == ["How can I help?"]


def test_first_clause_is_cut_early_at_a_comma_later_ones_are_not() -> None:
    text = "Sure thing, I can help with that, and then we will pick a day, if you like."
    assert split([w + " " for w in text.split()]) == [
        "Sure thing,",
        "I can help with that, and then we will pick a day,",
        "if you like.",
    ]


def test_abbreviations_and_decimals_do_not_end_sentences() -> None:
    assert split(["Dr. Smith sees you at 10.30 today. ", "Bye."]) == [
        "Dr. Smith sees you at 10.30 today.",
        "Bye.",
    ]


def test_trim_leading_silence_keeps_10_ms() -> None:
    audio = np.concatenate([np.zeros(4000, np.int16), np.full(100, 5000, np.int16)])
    trimmed = trim_leading_silence(audio)
    assert len(trimmed) == 160 + 100
    assert trim_leading_silence(np.zeros(50, np.int16)).size == 50


async def test_engine_speaks_16khz_and_caches_repeated_clauses() -> None:
    engine = TtsEngine(TtsSettings())
    engine.start()
    try:
        first = await engine.synthesize("What day would you like to come in?")
        assert 1.0 < len(first) / SAMPLE_RATE < 4.0
        assert np.abs(first.astype(np.int32)).max() > 2000  # speech, not silence
        again = await engine.synthesize("What day would you like to come in?")
        assert again is first and engine.cache_hits == 1
        assert engine.syntheses == 1
    finally:
        engine.close()


def test_a_missing_voice_file_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(TtsError, match=r"tts\.voice: .* is not a Piper \.onnx voice file"):
        TtsEngine(TtsSettings(voice="/nonexistent/voice.onnx"))


@pytest.mark.timeout(60)
def test_the_worker_survives_a_caller_whose_loop_closed() -> None:
    """A call that ended mid-synthesis has closed its loop; later calls must still be served."""
    engine = TtsEngine(TtsSettings())
    engine.start()
    gone = asyncio.new_event_loop()
    fut: asyncio.Future[npt.NDArray[np.int16]] = gone.create_future()
    gone.close()
    try:
        engine._pool.submit(
            "Nobody waits for this.", engine.default_voice, priority=FIRST, loop=gone, future=fut
        )
        audio = asyncio.run(engine.synthesize("Still here."))
        assert len(audio) > 0
        assert engine.syntheses == 2
    finally:
        engine.close()


def test_clauses_know_their_place_in_the_reply() -> None:
    clauses = split(["Sure thing, ", "I can help with that. ", "Bye now"])
    assert [(str(c), c.position) for c in clauses if isinstance(c, Clause)] == [
        ("Sure thing,", 0),
        ("I can help with that.", 1),
        ("Bye now", 2),
    ]
    assert [is_first_clause(c) for c in clauses] == [True, False, False]
    assert is_first_clause("A line not cut from a reply.")
