"""The short encoder window (stt.context_s) against Whisper's full 30 s window, on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.engines import Engines
from pipeline.stt import SttEngine
from pipeline.whisper_short import compression_ratio
from tests.support.speech import Samples, espeak, heard_of, word_error_rate, words

pytestmark = pytest.mark.slow

LINES = {
    "Hi, I'd like to book a cleaning.": {"book", "cleaning"},
    "My name is Maria Garcia.": {"name", "maria", "garcia"},
    "What are your opening hours?": {"opening", "hours"},
    "Can I reschedule my appointment for Friday morning?": {
        "reschedule",
        "appointment",
        "friday",
        "morning",
    },
    "No, that's all. Goodbye.": {"goodbye"},
}
"""Caller lines (deterministic caller voice, over a G.711 line) and the words they must give."""
MAX_WER = 0.25
"""The short window and the full one agree, and both hear the line, to within a word in four:
the same model on a shorter input, not a different transcript."""


def full_window(stt: SttEngine, audio: Samples) -> str:
    """The same audio through faster-whisper's own 30 s path."""
    segments, _ = stt._model.transcribe(
        audio.astype(np.float32) / 32768.0,
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return " ".join(s.text.strip() for s in segments).strip()


async def test_short_window_transcripts_match_the_full_window(
    engines: Engines, say: object
) -> None:
    stt = engines.stt
    assert isinstance(stt, SttEngine)
    before = stt.short_decodes
    for line, key_words in LINES.items():
        audio = say(line)  # type: ignore[operator]
        short = await stt.transcribe(audio, final=True) or ""
        full = full_window(stt, audio)
        assert word_error_rate(full, short) <= MAX_WER, (line, short, full)
        assert word_error_rate(line, short) <= MAX_WER, (line, short)
        assert heard_of(key_words, words(short)) == key_words, (line, short)
    assert stt.short_decodes == before + len(LINES)


async def test_a_prefix_is_kept_and_continued(engines: Engines, say: object) -> None:
    stt = engines.stt
    assert isinstance(stt, SttEngine)
    audio = say("Can I reschedule my appointment for Friday morning?")  # type: ignore[operator]
    text = await stt.transcribe(audio, final=False, prefix="Can I reschedule") or ""
    assert text.lower().startswith("can i reschedule")
    assert {"appointment", "friday", "morning"} <= words(text)


async def test_a_line_longer_than_the_window_takes_the_full_path(engines: Engines) -> None:
    stt = engines.stt
    assert isinstance(stt, SttEngine)
    long = espeak(
        "I would like to book a cleaning for my daughter and for my son, "
        "preferably on a Tuesday or a Thursday afternoon, after school, "
        "because they both have classes in the morning until three.",
    )
    assert len(long) / 16_000 > stt._short_window_s()
    before = stt.short_decodes
    text = await stt.transcribe(long, final=True) or ""
    assert stt.short_decodes == before
    assert {"cleaning", "daughter", "thursday"} <= words(text)


async def test_silence_and_noise_transcribe_to_nothing(engines: Engines) -> None:
    noise = (np.random.default_rng(0).standard_normal(32_000) * 300).astype(np.int16)
    stt = engines.stt
    assert isinstance(stt, SttEngine)
    assert await stt.transcribe(np.zeros(32_000, np.int16), final=True) == ""
    assert await stt.transcribe(noise, final=True) == ""


def test_repetition_loops_compress_well() -> None:
    assert compression_ratio("Are you still there? " * 12) > 2.4
    assert compression_ratio("Can I reschedule my appointment for Friday morning?") < 2.4
    assert compression_ratio("") == 0.0
