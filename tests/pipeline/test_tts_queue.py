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
from pipeline.tts import TtsBusy, TtsEngine


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
