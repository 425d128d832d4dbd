"""Streaming STT: local agreement, partial cadence, speculative finals (fake model)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from pipeline.fakes import FakeStt, utterance_audio
from pipeline.stt import SttStream, agreed_prefix


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
