"""Micro-batching for a shared inference engine, sans-IO.

`Batcher` holds the jobs waiting for one engine and says, for a given time, which of them run
together next. It owns no thread and reads no clock: the engine's worker feeds it `now` and
waits `wait_s(now)` between looks, so the rules are tested on a virtual clock.

The rules (the engine's latency choices, from `stt.batch_window_ms` and `stt.max_batch`):
- A batch waits at most `window_s` after the oldest pending job, for company: a stated cost
  (a few milliseconds) paid for decoding several calls' audio in one model call. It goes at once
  when `max_batch` jobs are pending.
- Finals before partials: while a final waits, the batch is finals only (oldest first); a
  partial never rides in a final's batch, where it would lengthen the final's decode. Partials
  are a latency optimisation, never a reason to delay a final.
- One partial per stream: a partial from a stream that has one queued replaces it (the older
  one's audio is a prefix of the newer one's), and a final supersedes its stream's queued
  partial. A partial that finds `capacity` jobs pending is dropped. Dropped jobs are returned to
  the caller of `put` (to resolve as "skipped") and counted in `dropped_partials`.
- `close()` hands back every pending job, for the engine to fail cleanly.

`decode_each` is the engine's side of a failing model call: a batch that raises is retried one
job at a time, so one bad input fails only itself.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.errors import EngineError

J = TypeVar("J")
In = TypeVar("In")
Out = TypeVar("Out")


class BatcherClosed(EngineError, RuntimeError):
    """A job was offered to a batcher that has been closed (its engine has stopped; a
    `RuntimeError` too, as it always was)."""


@dataclass(slots=True)
class _Pending(Generic[J]):
    job: J
    stream: Hashable | None
    enqueued: float


@dataclass(frozen=True, slots=True)
class Batch(Generic[J]):
    jobs: list[J]
    waits: list[float]
    """Seconds each job waited in the queue (same order as `jobs`)."""
    final: bool


class Batcher(Generic[J]):
    def __init__(self, *, max_batch: int, window_s: float, capacity: int) -> None:
        if max_batch < 1 or window_s < 0 or capacity < 1:
            raise ValueError("max_batch and capacity must be >= 1, window_s >= 0")
        self.max_batch = max_batch
        self.window_s = window_s
        self.capacity = capacity
        self._finals: list[_Pending[J]] = []
        self._partials: list[_Pending[J]] = []
        self.dropped_partials = 0
        self.closed = False

    @property
    def depth(self) -> int:
        """Jobs waiting (not yet taken)."""
        return len(self._finals) + len(self._partials)

    def put(self, job: J, *, final: bool, now: float, stream: Hashable | None = None) -> list[J]:
        """Queue `job`; returns the partials dropped by it (possibly `job` itself)."""
        if self.closed:
            raise BatcherClosed("the engine is closed")
        dropped = self._supersede(stream) if stream is not None else []
        if final:
            self._finals.append(_Pending(job, stream, now))
        elif self.depth >= self.capacity:
            dropped.append(job)
        else:
            self._partials.append(_Pending(job, stream, now))
        self.dropped_partials += len(dropped)
        return dropped

    def _supersede(self, stream: Hashable) -> list[J]:
        stale = [p for p in self._partials if p.stream == stream]
        if stale:
            self._partials = [p for p in self._partials if p.stream != stream]
        return [p.job for p in stale]

    def _due(self) -> float | None:
        """When the pending jobs must go (the oldest one's window ends); None: nothing waits."""
        firsts = [q[0].enqueued for q in (self._finals, self._partials) if q]
        return min(firsts) + self.window_s if firsts else None

    def wait_s(self, now: float) -> float | None:
        """How long the worker may sleep before `take` has a batch (None: until a `put`)."""
        due = self._due()
        if due is None:
            return None
        if self.depth >= self.max_batch:
            return 0.0
        return max(0.0, due - now)

    def take(self, now: float) -> Batch[J] | None:
        """The next batch, or None when nothing is due yet (or nothing waits)."""
        wait = self.wait_s(now)
        if wait is None or wait > 0 or self.closed:
            return None
        final = bool(self._finals)
        queue = self._finals if final else self._partials
        taken, rest = queue[: self.max_batch], queue[self.max_batch :]
        if final:
            self._finals = rest
        else:
            self._partials = rest
        return Batch([p.job for p in taken], [now - p.enqueued for p in taken], final)

    def close(self) -> list[J]:
        """Stop taking jobs; the pending ones (finals first), for the engine to fail."""
        self.closed = True
        pending = [p.job for p in self._finals + self._partials]
        self._finals, self._partials = [], []
        return pending


def decode_each(
    call: Callable[[Sequence[In]], Sequence[Out]], items: Sequence[In]
) -> list[Out | Exception]:
    """`call` on the whole batch; if it raises, on each item alone, so that an input the model
    cannot take fails only itself. An item's result is what `call` returned or what it raised."""
    try:
        results = list(call(items))
        if len(results) != len(items):
            raise RuntimeError(f"{len(results)} results for a batch of {len(items)}")
        return [*results]
    except Exception as exc:
        if len(items) == 1:
            return [exc]
    outcomes: list[Out | Exception] = []
    for item in items:
        try:
            outcomes.append(call([item])[0])
        except Exception as exc:
            outcomes.append(exc)
    return outcomes
