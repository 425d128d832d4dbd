"""The synthesis queue is bounded by `tts.queue_size`: with that many clauses waiting behind a
busy worker, the next one is refused at once (`TtsBusy`, retryable) instead of queueing
seconds of speech nobody will wait for; the queued ones still complete. Real Piper engine
(its worker thread), with the synthesis itself held on an event so the queue's state is known."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from config.schema import TtsSettings
from pipeline.tts import Clause, ClauseSplitter, TtsBusy, TtsEngine, TtsError


async def test_a_full_synthesis_queue_refuses_the_next_clause() -> None:
    engine = TtsEngine(TtsSettings(queue_size=2))
    entered, release = threading.Event(), threading.Event()

    def held(text: str, voice: str = "", **_: Any) -> np.ndarray[Any, Any]:
        entered.set()
        release.wait(10)
        return np.full(160, len(text), dtype=np.int16)

    engine.synthesize_blocking = held  # type: ignore[method-assign]
    engine.start()
    try:
        speaking = asyncio.ensure_future(engine.synthesize("one"))
        await asyncio.to_thread(entered.wait, 10)  # the worker holds "one"
        waiting = [asyncio.ensure_future(engine.synthesize(t)) for t in ("two!", "three")]
        await asyncio.sleep(0)  # one loop turn: both tasks ran up to their (synchronous) put
        assert engine.depth == 2
        with pytest.raises(TtsBusy) as refused:
            await engine.synthesize("four")
        assert refused.value.retryable
        release.set()
        results = await asyncio.wait_for(asyncio.gather(speaking, *waiting), 10)
        assert [int(r[0]) for r in results] == [3, 4, 5]
        assert engine.depth == 0
    finally:
        release.set()
        await asyncio.to_thread(engine.close)


def held_engine(**kw: Any) -> tuple[TtsEngine, threading.Event, threading.Event, list[str]]:
    """A real engine whose synthesis records the text and holds on "one" until released."""
    engine = TtsEngine(TtsSettings(), **kw)
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    def held(text: str, voice: str = "", **_: Any) -> np.ndarray[Any, Any]:
        order.append(text)
        if text == "one":
            entered.set()
            release.wait(10)
        return np.full(160, len(text), dtype=np.int16)

    engine.synthesize_blocking = held  # type: ignore[method-assign]
    return engine, entered, release, order


async def test_a_replys_first_clause_goes_before_other_replies_later_clauses() -> None:
    engine, entered, release, order = held_engine()
    engine.start()
    try:
        speaking = asyncio.ensure_future(engine.synthesize("one"))
        await asyncio.to_thread(entered.wait, 10)
        splitter = ClauseSplitter()
        busy_reply = splitter.push("Sure thing. I can look at your booking for next week. ")
        busy_reply += splitter.flush()  # a first clause and a later one
        assert [c.position for c in busy_reply if isinstance(c, Clause)] == [0, 1]
        new_reply = ClauseSplitter().push("Hello there, ")  # another call's first clause
        jobs = [asyncio.ensure_future(engine.synthesize(c)) for c in busy_reply[1:] + new_reply]
        jobs.append(asyncio.ensure_future(engine.synthesize("A prompt said on its own.")))
        jobs.append(asyncio.ensure_future(engine.synthesize("Forced later.", first=False)))
        await asyncio.sleep(0)  # one loop turn: every task ran up to its (synchronous) submit
        assert engine.depth == 4
        release.set()
        await asyncio.wait_for(asyncio.gather(speaking, *jobs), 10)
        assert order == [
            "one",
            "Hello there,",
            "A prompt said on its own.",
            "I can look at your booking for next week.",
            "Forced later.",
        ]
    finally:
        release.set()
        await asyncio.to_thread(engine.close)


async def test_closing_fails_the_clauses_still_waiting() -> None:
    engine, entered, release, _ = held_engine(workers=1)
    engine.start()
    try:
        speaking = asyncio.ensure_future(engine.synthesize("one"))
        await asyncio.to_thread(entered.wait, 10)
        waiting = asyncio.ensure_future(engine.synthesize("two"))
        await asyncio.sleep(0)
        assert engine.depth == 1
        closing = asyncio.ensure_future(asyncio.to_thread(engine.close))
        with pytest.raises(TtsError, match="closed"):
            await asyncio.wait_for(waiting, 10)
        release.set()
        await asyncio.wait_for(closing, 15)
        assert int((await speaking)[0]) == 3
        with pytest.raises(TtsError, match="not running"):
            await engine.synthesize("three")
    finally:
        release.set()
        await asyncio.to_thread(engine.close)
