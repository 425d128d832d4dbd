"""STT batched across calls, on the real model and real speech (Piper's caller voice, espeak-ng).

A batch must give each utterance the transcript it gets alone (short window and 30 s window,
the latter against faster-whisper's own `transcribe`), a decode the model cannot take fails
alone, and concurrent calls' streams each get their own words through the one engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from config.schema import SttSettings, TtsSettings
from pipeline.stt import SttEngine, SttError, SttStream
from pipeline.tts import TtsEngine
from pipeline.whisper_short import Utterance
from tests.support.speech import espeak, heard_of, spoken_words, word_error_rate
from voicenode.simulate import caller_voice

pytestmark = pytest.mark.slow

Samples = npt.NDArray[np.int16]

LINES = {
    "Hi, I'd like to book a cleaning.": {"book", "cleaning"},
    "My name is Maria Garcia.": {"maria", "garcia"},
    "Can I reschedule my appointment for Friday morning?": {"reschedule", "friday", "morning"},
    "What are your opening hours?": {"opening", "hours"},
}
"""Four callers' lines; no line's key words are in another line."""
CONTEXT = "Bright Smile Dental, Delta Dental, Doctor Patel."
"""Every call's agent vocabulary (the same agent: the same context, hence one batch)."""
MAX_WER = 0.25
"""Each call's transcript is its own line to within a word in four (tests/e2e/speech.py)."""
LONG = (
    "I would like to book a cleaning for my daughter and for my son, preferably on a Tuesday "
    "or a Thursday afternoon, after school, because they both have classes in the morning."
)


@pytest.fixture(scope="module")
def voices() -> dict[str, Samples]:
    tts = TtsEngine(TtsSettings())
    return {line: caller_voice(tts, line) for line in LINES}


@pytest.fixture(scope="module")
def engine() -> Iterator[SttEngine]:
    eng = SttEngine(SttSettings(max_batch=8))  # batching as on CUDA (the CPU default is 1)
    eng.warm_up()
    eng.start()
    yield eng
    eng.close()


def floats(audio: Samples) -> npt.NDArray[np.float32]:
    return audio.astype(np.float32) / 32768.0


def key_words_of(text: str) -> set[str]:
    """The lines' key words `text` holds (of any line)."""
    heard = set(spoken_words(text))
    return set().union(*(heard_of(keys, heard) for keys in LINES.values()))


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def test_a_batch_decodes_each_utterance_as_it_decodes_alone(
    engine: SttEngine, voices: dict[str, Samples]
) -> None:
    lines = list(LINES)[:3]
    items = [
        Utterance(floats(voices[lines[0]]), "", CONTEXT),
        Utterance(floats(voices[lines[1]]), "My name", CONTEXT),
        Utterance(floats(voices[lines[2]]), "", CONTEXT),
    ]
    alone = [engine._decode_batch([item])[0] for item in items]
    together = engine._decode_batch(items)
    assert engine._short.last_calls == [3]  # one model call for the three
    assert together == alone
    for line, text in zip(lines, together, strict=True):
        assert word_error_rate(line, text) <= MAX_WER, (line, text)
    # a decode without the context cannot share the call (CTranslate2 needs the prompts'
    # start-of-transcript at one position): two calls, the same transcripts
    mixed = [items[0], Utterance(items[1].audio), items[2]]
    without_context = engine._decode_batch([mixed[1]])[0]
    assert engine._decode_batch(mixed) == [alone[0], without_context, alone[2]]
    assert engine._short.last_calls == [2, 1]


def full_window(engine: SttEngine, item: Utterance) -> str:
    """faster-whisper's own decode of the utterance (the engine's 30 s path before batching)."""
    segments, _ = engine._model.transcribe(
        item.audio,
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
        prefix=item.prefix or None,
        initial_prompt=item.context or None,
    )
    return " ".join(s.text.strip() for s in segments).strip()


def test_the_30s_window_batch_gives_faster_whispers_transcripts(
    engine: SttEngine, voices: dict[str, Samples]
) -> None:
    long = floats(espeak(LONG))
    assert engine._short_window_s() < len(long) / 16_000 < 30
    lines = list(LINES)
    items = [
        Utterance(long),
        Utterance(floats(voices[lines[0]]), "", CONTEXT),
        Utterance(floats(voices[lines[1]]), "My name"),
        Utterance(np.concatenate([long, long, long])),  # over 30 s: faster-whisper's loop
    ]
    batched = engine._full.decode_batch(items)
    assert engine._full.last_calls == [1, 2, 1]  # the 36 s line alone; one call per prompt shape
    assert batched == [full_window(engine, item) for item in items]
    heard = set(spoken_words(batched[0]))
    assert len(heard_of({"cleaning", "daughter", "thursday", "afternoon"}, heard)) >= 3


async def test_a_decode_the_model_cannot_take_fails_alone(
    engine: SttEngine, voices: dict[str, Samples], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = np.zeros(12_345, np.int16)
    calls: list[int] = []
    decode = engine._short.decode_batch

    def failing(items: Sequence[Utterance]) -> list[str | None]:
        calls.append(len(items))
        if any(len(item.audio) == len(bad) for item in items):
            raise RuntimeError("the model cannot take this input")
        return decode(items)

    monkeypatch.setattr(engine._short, "decode_batch", failing)
    lines = list(LINES)[:2]
    with engine._cond:  # the worker waits: the three decodes queue together
        jobs: list[asyncio.Task[Any]] = [
            asyncio.create_task(engine.transcribe(audio, final=True))
            for audio in (voices[lines[0]], bad, voices[lines[1]])
        ]
        await until(lambda: engine.depth == 3)
    first, failed, second = await asyncio.gather(*jobs, return_exceptions=True)
    assert calls == [3, 1, 1, 1]  # the batch, then each decode alone
    assert isinstance(failed, SttError)
    assert isinstance(first, str) and isinstance(second, str)
    assert word_error_rate(lines[0], first) <= MAX_WER, first
    assert word_error_rate(lines[1], second) <= MAX_WER, second


async def feed(streams: list[SttStream], audios: list[Samples], tasks: set[Any]) -> None:
    """The callers talk at once, 20 ms at a time; every 0.4 s of speech the partials queued
    are let finish (so that each round's partials are queued together, as calls' would)."""
    longest = max(len(a) for a in audios)
    for n, start in enumerate(range(0, longest, 320)):
        for stream, audio in zip(streams, audios, strict=True):
            if start < len(audio):
                stream.push(audio[start : start + 320], n * 0.02, speaking=True)
        await asyncio.sleep(0)
        if n % 20 == 19 and tasks:
            await asyncio.wait(set(tasks), timeout=120)
    if tasks:
        await asyncio.wait(set(tasks), timeout=120)
    assert not tasks


async def test_concurrent_calls_each_get_their_own_words(
    engine: SttEngine, voices: dict[str, Samples]
) -> None:
    lines = list(LINES)
    partials: list[list[str]] = [[] for _ in lines]
    tasks: set[asyncio.Task[Any]] = set()
    streams = [
        SttStream(
            engine, interval_s=0.4, on_partial=partials[i].append, tasks=tasks, context=CONTEXT
        )
        for i in range(len(lines))
    ]
    before = engine.batch_sizes
    await feed(streams, [voices[line] for line in lines], tasks)
    with engine._cond:  # the worker waits: the four callers' finals queue together
        for stream in streams:
            stream.speculate()
        await until(lambda: engine.depth == len(streams))
    finals = await asyncio.gather(*(stream.final() for stream in streams))
    after = engine.batch_sizes
    sizes = {n: after.get(n, 0) - before.get(n, 0) for n in after}
    print("model calls by batch size:", {n: c for n, c in sorted(sizes.items()) if c})
    print("partials per call:", [len(p) for p in partials])
    assert sizes.get(len(streams), 0) >= 1  # the finals' batch
    for i, (line, keys) in enumerate(LINES.items()):
        assert word_error_rate(line, finals[i]) <= MAX_WER, (line, finals[i])
        assert key_words_of(finals[i]) <= keys, (line, finals[i])  # no other call's words
        for partial in partials[i]:
            assert key_words_of(partial) <= keys, (line, partial)
        assert partials[i], line
    for stream in streams:
        stream.close()
