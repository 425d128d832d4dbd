"""The synthesis workers: first clauses before later ones, the bound, several workers at once,
a failing job failing alone, closing with jobs waiting. A fake render function held on events
(no model), so the queue's state is known when each job is submitted."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from pipeline.tts_pool import FIRST, LATER, Samples, SynthesisPool


class Render:
    """Records what it renders; holds on "hold" until released; raises on "bad"."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.order: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.barrier = barrier

    def __call__(self, text: str, voice: str) -> Samples:
        self.order.append(text)
        if self.barrier is not None:
            self.barrier.wait()
        if text == "hold":
            self.entered.set()
            self.release.wait(10)
        if text == "bad":
            raise ValueError("cannot say that")
        return np.full(4, len(text), dtype=np.int16)


def submit(pool: SynthesisPool, text: str, priority: int) -> asyncio.Future[Samples]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Samples] = loop.create_future()
    assert pool.submit(text, "voice", priority=priority, loop=loop, future=fut)
    return fut


async def holding(render: Render, pool: SynthesisPool) -> asyncio.Future[Samples]:
    """Start `pool` with its one worker held on a job."""
    pool.start()
    held = submit(pool, "hold", FIRST)
    await asyncio.to_thread(render.entered.wait, 10)
    return held


async def test_first_clauses_are_synthesized_before_later_ones() -> None:
    render = Render()
    pool = SynthesisPool(render, workers=1, queue_size=8)
    try:
        held = await holding(render, pool)
        later = [submit(pool, t, LATER) for t in ("later one", "later two")]
        first = [submit(pool, t, FIRST) for t in ("first a", "first b")]
        assert pool.depth == 4
        render.release.set()
        await asyncio.wait_for(asyncio.gather(held, *later, *first), 10)
        assert render.order == ["hold", "first a", "first b", "later one", "later two"]
        assert pool.jobs == 5 and pool.depth == 0
    finally:
        render.release.set()
        await asyncio.to_thread(pool.close)


async def test_a_full_queue_refuses_whatever_the_priority() -> None:
    render = Render()
    pool = SynthesisPool(render, workers=1, queue_size=2)
    try:
        held = await holding(render, pool)
        waiting = [submit(pool, "a", LATER), submit(pool, "b", LATER)]
        fut = asyncio.get_running_loop().create_future()
        assert not pool.submit("c", "voice", priority=FIRST, loop=fut.get_loop(), future=fut)
        render.release.set()
        await asyncio.wait_for(asyncio.gather(held, *waiting), 10)
    finally:
        render.release.set()
        await asyncio.to_thread(pool.close)


async def test_workers_synthesize_at_once() -> None:
    render = Render(barrier=threading.Barrier(2, timeout=10))  # both must be in render at once
    pool = SynthesisPool(render, workers=2, queue_size=4)
    pool.start()
    try:
        both = [submit(pool, "one", LATER), submit(pool, "two", LATER)]
        results = await asyncio.wait_for(asyncio.gather(*both), 15)
        assert [int(r[0]) for r in results] == [3, 3]
    finally:
        await asyncio.to_thread(pool.close)


async def test_a_failing_job_fails_alone_and_the_hook_sees_every_job() -> None:
    seen: list[tuple[float, float]] = []
    pool = SynthesisPool(Render(), workers=1, queue_size=4, on_job=lambda w, s: seen.append((w, s)))
    pool.start()
    try:
        bad, good = submit(pool, "bad", FIRST), submit(pool, "fine", FIRST)
        with pytest.raises(ValueError, match="cannot say that"):
            await asyncio.wait_for(bad, 10)
        assert int((await asyncio.wait_for(good, 10))[0]) == 4
        assert len(seen) == 2 and all(w >= 0 and s >= 0 for w, s in seen)
    finally:
        await asyncio.to_thread(pool.close)


async def test_close_hands_back_the_waiting_jobs_and_refuses_new_ones() -> None:
    render = Render()
    pool = SynthesisPool(render, workers=1, queue_size=4)
    held = await holding(render, pool)
    later, first = submit(pool, "later", LATER), submit(pool, "first", FIRST)
    pending = pool.stop()  # while the worker still holds "hold"
    assert [job.text for job in pending] == ["first", "later"]
    render.release.set()  # the worker finishes the job it holds, and takes no other
    assert await asyncio.wait_for(asyncio.to_thread(pool.close), 15) == []
    assert int((await asyncio.wait_for(held, 10))[0]) == 4
    assert not later.done() and not first.done()  # the pool's owner fails them
    assert render.order == ["hold"]
    with pytest.raises(RuntimeError, match="not running"):
        submit(pool, "late", FIRST)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        SynthesisPool(Render(), workers=0, queue_size=1)
