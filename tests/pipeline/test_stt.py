"""Streaming STT: local agreement, partial cadence (and under load), speculative finals, the
utterance each decode belongs to (fake model)."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import numpy as np
import pytest

from pipeline.fakes import FakeStt, utterance_audio
from pipeline.stt import BatchingTranscriber, SttStream, agreed_prefix, partial_interval


def test_agreed_prefix_compares_words_loosely() -> None:
    assert agreed_prefix("I'd like to book", "I'd like to book a cleaning") == "I'd like to book"
    assert agreed_prefix("i'd like, to", "I'd like to book") == "I'd like to"
    assert agreed_prefix("Hello", "Goodbye") == ""
    assert agreed_prefix("", "anything") == ""


class Recorder:
    def __init__(self) -> None:
        self.partials: list[str] = []

    def __call__(self, text: str) -> None:
        self.partials.append(text)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_partials_on_a_cadence_and_commit_by_agreement() -> None:
    stt = FakeStt(["book a cleaning please"])
    rec = Recorder()
    tasks: set[asyncio.Task[Any]] = set()
    stream = SttStream(stt, interval_s=0.4, on_partial=rec, tasks=tasks)
    audio = utterance_audio(0, 2.0)
    t = 0.0
    for i in range(0, len(audio), 320):
        stream.push(audio[i : i + 320], t, speaking=True)
        t += 0.02
        await settle()
    # 2 s of speech at a 0.4 s cadence: 5 partial decodes, each of the utterance so far
    partial_requests = [n for final, n in stt.requests if not final]
    assert len(partial_requests) == 5
    assert partial_requests == sorted(partial_requests)
    assert rec.partials[-1] == "book a cleaning please"
    assert stream.committed == "book a cleaning please"  # two hypotheses agreed
    assert await stream.final() == "book a cleaning please"
    stream.close()


async def test_speculative_final_is_used_unless_speech_resumes() -> None:
    stt = FakeStt(["first", "second"])
    tasks: set[asyncio.Task[Any]] = set()
    stream = SttStream(stt, interval_s=10.0, on_partial=Recorder(), tasks=tasks)
    stream.push(utterance_audio(0, 0.5), 0.0, speaking=True)
    await settle()
    stt.requests.clear()
    stream.speculate()
    await settle()
    assert stt.requests == [(True, 8000)]
    assert await stream.final() == "first"
    assert len(stt.requests) == 1  # the speculative decode was the final one

    stream2 = SttStream(stt, interval_s=10.0, on_partial=Recorder(), tasks=tasks)
    stream2.push(np.asarray(utterance_audio(0, 0.5) // 2, dtype=np.int16), 0.0, speaking=True)
    stream2.speculate()
    stream2.cancel_speculation()  # the caller went on talking, louder
    stream2.push(utterance_audio(1, 0.5), 0.5, speaking=True)
    assert await stream2.final() == "second"
    stream2.close()


def test_the_partial_cadence_lengthens_per_full_batch_queued_ahead() -> None:
    assert partial_interval(0.4, 0, 8) == 0.4
    assert partial_interval(0.4, 7, 8) == 0.4  # the next batch has room for it
    assert partial_interval(0.4, 8, 8) == pytest.approx(0.8)
    assert partial_interval(0.4, 17, 8) == pytest.approx(1.2)
    assert partial_interval(0.4, 1, 1) == pytest.approx(0.8)  # unbatched: one decode ahead


class SharedEngine:
    """A batching engine as `SttStream` sees one: its load, and the stream of each decode."""

    def __init__(self, lines: list[str], *, depth: int, max_batch: int = 2) -> None:
        self.stt = FakeStt(lines)
        self.depth = depth
        self.max_batch = max_batch
        self.streams: list[tuple[bool, object]] = []

    async def transcribe(
        self,
        audio: Any,
        *,
        final: bool,
        prefix: str = "",
        context: str = "",
        stream: Hashable | None = None,
    ) -> str | None:
        self.streams.append((final, stream))
        return await self.stt.transcribe(audio, final=final, prefix=prefix, context=context)


async def partials_over_two_seconds(engine: SharedEngine) -> SttStream:
    tasks: set[asyncio.Task[Any]] = set()
    stream = SttStream(engine, interval_s=0.4, on_partial=Recorder(), tasks=tasks)
    audio = utterance_audio(0, 2.0)
    for n, i in enumerate(range(0, len(audio), 320)):
        stream.push(audio[i : i + 320], n * 0.02, speaking=True)
        await settle()
    return stream


async def test_a_loaded_engine_gets_fewer_partials() -> None:
    assert isinstance(SharedEngine([], depth=0), BatchingTranscriber)
    counts = {}
    for depth in (0, 1, 2, 4):
        engine = SharedEngine(["book a cleaning please"], depth=depth)
        stream = await partials_over_two_seconds(engine)
        counts[depth] = sum(1 for final, _ in engine.streams if not final)
        stream.close()
    # 2 s of speech: every 0.4 s while the next batch has room, every 0.8 s with one full
    # batch (2) queued ahead, every 1.2 s with two
    assert counts == {0: 5, 1: 5, 2: 3, 4: 2}


async def test_each_decode_names_the_utterance_it_belongs_to() -> None:
    engine = SharedEngine(["book a cleaning please"], depth=0)
    one = await partials_over_two_seconds(engine)
    two = await partials_over_two_seconds(engine)
    one.speculate()
    assert await one.final() == "book a cleaning please"
    assert await two.final() == "book a cleaning please"
    assert {s for _, s in engine.streams} == {one, two}
    assert [s for final, s in engine.streams if final] == [one, two]
    assert all(isinstance(s, SttStream) for _, s in engine.streams)
    assert not isinstance(FakeStt([]), BatchingTranscriber)  # the fake takes no stream
