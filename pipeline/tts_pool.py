"""The synthesis workers behind `TtsEngine`: first clauses before later ones.

A call waiting for the first clause of a reply hears nothing until it is done: that wait is
voice-to-voice latency. A later clause has the playout of the clauses before it in front of
it. So the queue is ordered by priority (`FIRST`, then `LATER`), then by arrival; `workers`
threads take from it (how many: `pipeline.threads`). The queue is bounded (`queue_size`
jobs waiting, of any priority): a job past it is refused at once. `close()` stops the workers
and hands back the jobs still waiting, for their callers to be failed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pipeline.handoff import deliver

Samples = npt.NDArray[np.int16]

FIRST, LATER = 0, 1
"""Job priorities: the first clause of a reply, and the clauses after it."""


@dataclass(order=True)
class SynthesisJob:
    priority: int
    seq: int
    text: str = field(compare=False)
    voice: str = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    future: asyncio.Future[Samples] = field(compare=False)
    queued_at: float = field(compare=False, default=0.0)


class SynthesisPool:
    """`workers` threads running `render(text, voice)` on queued jobs, best priority first.

    `on_job(waited_s, service_s)` is called on the worker thread after each rendered job
    (metrics). An exception from `render` fails that job only."""

    def __init__(
        self,
        render: Callable[[str, str], Samples],
        *,
        workers: int,
        queue_size: int,
        on_job: Callable[[float, float], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        name: str = "tts-worker",
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._render = render
        self.workers = workers
        self.queue_size = queue_size
        self._on_job = on_job
        self._clock = clock
        self._name = name
        self._heap: list[SynthesisJob] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.jobs = 0
        """Jobs rendered (or failed in `render`)."""
        self.busy_s = 0.0
        """Seconds spent in `render`, over all workers."""

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker."""
        with self._cond:
            return len(self._heap)

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        with self._cond:
            if self._threads:
                return
            self._closed = False
            self._threads = [
                threading.Thread(target=self._work, name=f"{self._name}-{i}", daemon=True)
                for i in range(self.workers)
            ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> list[SynthesisJob]:
        """Take no more jobs (without waiting for the workers); the jobs still waiting, which
        no worker will take."""
        with self._cond:
            self._closed = True
            pending, self._heap = sorted(self._heap), []
            self._cond.notify_all()
            return pending

    def close(self) -> list[SynthesisJob]:
        """`stop`, then wait for the workers (each finishes the job it holds)."""
        pending = self.stop()
        with self._cond:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=10)
        return pending

    def submit(
        self,
        text: str,
        voice: str,
        *,
        priority: int,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Samples],
    ) -> bool:
        """Queue a job (resolved on `loop` through `future`); False when `queue_size` jobs
        already wait. Raises `RuntimeError` when the pool is not running."""
        with self._cond:
            if self._closed or not self._threads:
                raise RuntimeError("the synthesis workers are not running")
            if len(self._heap) >= self.queue_size:
                return False
            job = SynthesisJob(priority, next(self._seq), text, voice, loop, future, self._clock())
            heapq.heappush(self._heap, job)
            self._cond.notify()
            return True

    def _take(self) -> SynthesisJob | None:
        with self._cond:
            while not self._heap and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return heapq.heappop(self._heap)

    def _work(self) -> None:
        while (job := self._take()) is not None:
            if job.future.cancelled():
                continue
            started = self._clock()
            try:
                audio = self._render(job.text, job.voice)
            except Exception as exc:  # a bad text or voice must not kill the worker
                deliver(job.loop, job.future, exc=exc)
                continue
            finally:
                service = self._clock() - started
                with self._cond:
                    self.jobs += 1
                    self.busy_s += service
                if self._on_job is not None:
                    self._on_job(started - job.queued_at, service)
            deliver(job.loop, job.future, audio)
