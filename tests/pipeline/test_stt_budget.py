"""The STT engine's CPU defaults and its token budget, on the real model and real speech.

On the CPU the engine decodes one utterance per model call (a batch costs the sum of its
decodes there, and each waits for the last). A decode generates at most `token_budget` tokens,
so a repetition loop stops early instead of running to Whisper's 448; a partial that loops is
skipped (None), a final that loops gets the 30 s window, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from config.schema import SttSettings
from pipeline.stt_engine import SttEngine, auto_max_batch
from pipeline.whisper_short import MAX_LENGTH, Utterance, token_budget
from tests.support.speech import espeak, heard_of, spoken_words

pytestmark = pytest.mark.slow

LINE = "I would like to book a cleaning for next Tuesday."
KEYS = {"would", "like", "next", "tuesday"}
"""Words of the line tiny.en hears through espeak-ng's voice (it may miss "book a cleaning")."""


def heard(text: str | None) -> bool:
    """The transcript is this line's: at least three of its key words."""
    return text is not None and len(heard_of(KEYS, spoken_words(text))) >= 3


@pytest.fixture(scope="module")
def engine() -> Iterator[SttEngine]:
    eng = SttEngine(SttSettings())
    eng.start()
    yield eng
    eng.close()


def test_the_budget_grows_with_the_audio_and_stays_under_whispers_limit() -> None:
    assert token_budget(0) == 16
    assert token_budget(16_000) == 26  # 16 + 10 a second
    assert token_budget(8_000) == 21  # a part second counts whole
    assert token_budget(10 * 16_000) < MAX_LENGTH


def test_the_cpu_default_is_one_decode_per_model_call(engine: SttEngine) -> None:
    assert engine.device == "cpu"
    assert engine.max_batch == auto_max_batch("cpu") == 1
    assert auto_max_batch("cuda") == 8
    assert SttEngine(SttSettings(max_batch=4)).max_batch == 4  # a set value is kept


async def test_queued_finals_run_one_model_call_each(engine: SttEngine) -> None:
    audio = espeak(LINE)
    before = engine.batch_sizes
    with engine._cond:  # the worker waits: three finals queue together
        jobs = [asyncio.create_task(engine.transcribe(audio, final=True)) for _ in range(3)]
        for _ in range(1000):
            if engine.depth == 3:
                break
            await asyncio.sleep(0)
        assert engine.depth == 3
    texts = await asyncio.gather(*jobs)
    after = engine.batch_sizes
    assert {n: after[n] - before.get(n, 0) for n in after if after[n] != before.get(n)} == {1: 3}
    assert len(set(texts)) == 1 and heard(texts[0]), texts  # the same audio, the same words


def test_generation_is_bounded_by_the_prompt_and_the_budget(
    engine: SttEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = engine._model.model
    asked: list[int] = []
    generate = model.generate

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(model, name)

        def generate(self, *args: Any, **kwargs: Any) -> Any:
            asked.append(kwargs["max_length"])
            return generate(*args, **kwargs)

    monkeypatch.setattr(engine._model, "model", Spy())
    audio = espeak(LINE).astype(np.float32) / 32768.0
    text = engine._short.decode(audio, context="Bright Smile Dental.")
    assert heard(text), text
    prompt = engine._short._prompt(Utterance(audio, "", "Bright Smile Dental."))
    assert asked == [len(prompt) + token_budget(len(audio))]


def test_a_decode_that_reaches_its_budget_is_a_loop(engine: SttEngine) -> None:
    tok = engine._short._tokenizer
    words = tok.encode(" Hello hello hello hello")
    looped = SimpleNamespace(
        sequences_ids=[words * 10], scores=[-0.1], no_speech_prob=0.0
    )  # 40 tokens, the budget 30
    assert engine._short._text(looped, 30) is None
    short = SimpleNamespace(sequences_ids=[words], scores=[-0.1], no_speech_prob=0.0)
    assert engine._short._text(short, 30) == "Hello hello hello hello"


async def test_a_partial_that_loops_is_skipped_and_a_final_gets_the_30s_window(
    engine: SttEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    full: list[int] = []

    def loops(items: Sequence[Utterance]) -> list[str | None]:
        return [None] * len(items)  # every short decode looked like a loop

    def full_window(items: Sequence[Utterance]) -> list[str]:
        full.append(len(items))
        return ["the 30 s transcript"] * len(items)

    monkeypatch.setattr(engine._short, "decode_batch", loops)
    monkeypatch.setattr(engine._full, "decode_batch", full_window)
    audio = espeak(LINE)
    assert await engine.transcribe(audio, final=False) is None
    assert full == []
    assert await engine.transcribe(audio, final=True) == "the 30 s transcript"
    assert full == [1]
