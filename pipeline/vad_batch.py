"""One Silero run per tick for every live call: `VadBatcher`.

Each call's `VadStream` submits its window (576 samples) and recurrent state when a frame
completes one; the batcher collects the submissions of all calls on the event loop and scores
them in ONE model run ([B, 576] in, state [1, B, 128]), then hands each call its probability
and new state. Per-call state stays with the call; only the run is shared.

When a batch runs (the latency choice): at once when every stream whose gate is open (the
streams that may submit: `opened`/`closed`) has submitted, else at most `window_s` after
its first submission (default one 20 ms frame, `DEFAULT_WINDOW_S`). A call's frames arrive
20 ms apart and a stream submits at most one window per frame and waits for its result, so
a batch holds at most one window per call. With one live call, or all calls' frames
arriving together (as pjsua2's conference clock delivers them), nothing waits: the last
submission runs the batch. With calls at staggered phases, a window waits for the others
at most `window_s` (one frame) plus event-loop lag, about half of it on average: endpoints
come up to 20 ms later, in exchange for fewer runs. `window_s = 0` batches only what
arrives in the same loop iteration (no added wait; smaller batches).

The run itself happens on the event loop thread, as the per-call runs did (a run of 12
windows took about 0.8 ms of one core here, one window about 0.12 ms). A failing run fails
the submissions of its own batch only; a submitter that was cancelled meanwhile is skipped.
Metrics (`pipeline/engine_metrics.py`, engine="vad"): `voicenode_engine_batch_size` and
`voicenode_engine_queue_wait_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from media.frames import FRAME_MS
from pipeline.engine_metrics import BATCH_SIZE, QUEUE_WAIT, engine_cpu

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S = FRAME_MS / 1000
ENGINE = "vad"
"""The `engine` label of this batcher's metrics (`pipeline/engine_metrics.py`: batch sizes,
each window's wait from submission to its run)."""
_SIZES = BATCH_SIZE.labels(engine=ENGINE)
_WAITS = QUEUE_WAIT.labels(engine=ENGINE)

F32 = npt.NDArray[np.float32]
Scored = tuple[float, F32, F32]


@runtime_checkable
class BatchVadModel(Protocol):
    """A VAD model that scores many streams' windows in one run."""

    def run_batch(self, windows: F32, h: F32, c: F32) -> tuple[F32, F32, F32]:
        """windows [B, 576], h and c [1, B, 128] → (probabilities [B], h [1, B, 128], c)."""
        ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


Later = Callable[[float, Callable[[], None]], Cancellable]
"""Runs a callback after a delay (the loop's `call_later`; tests pass a manual timer)."""


class _Job:
    __slots__ = ("window", "h", "c", "future", "at")

    def __init__(self, window: F32, h: F32, c: F32, future: asyncio.Future[Scored]) -> None:
        self.window = window
        self.h = h
        self.c = c
        self.future = future
        self.at = future.get_loop().time()


class VadBatcher:
    """Collects the loop's VAD windows for one tick and scores them in one model run."""

    def __init__(
        self,
        model: BatchVadModel,
        loop: asyncio.AbstractEventLoop,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        later: Later | None = None,
    ) -> None:
        if not 0.0 <= window_s <= DEFAULT_WINDOW_S:
            raise ValueError(f"window_s must be within one frame (0..{DEFAULT_WINDOW_S} s)")
        self._model = model
        self._loop = loop
        self._window_s = window_s
        self._jobs: list[_Job] = []
        self._later: Later = later or loop.call_later
        self._timer: Cancellable | None = None
        self._open: weakref.WeakSet[object] = weakref.WeakSet()
        self.runs = 0

    # ---- the streams whose gate is open (they may submit this tick) -------------------

    def opened(self, stream: object) -> None:
        self._open.add(stream)

    def closed(self, stream: object) -> None:
        self._open.discard(stream)
        self._maybe_flush_now()

    # ---- submissions -------------------------------------------------------------------

    def run_alone(self, window: F32, h: F32, c: F32) -> Scored | None:
        """With no other stream open and nothing pending, score `window` now (a batch of
        one, no future); None: submit it."""
        if self._jobs or len(self._open) > 1:
            return None
        with engine_cpu(ENGINE):
            probs, h2, c2 = self._model.run_batch(window[np.newaxis], h, c)
        self.runs += 1
        _SIZES.observe(1)
        _WAITS.observe(0.0)
        return float(probs[0]), h2, c2

    def submit(self, window: F32, h: F32, c: F32) -> asyncio.Future[Scored]:
        """Score `window` (576 samples) from state h, c ([1, 1, 128]) in this tick's batch.
        Once every open stream has submitted, the batch runs at once, in this call: the last
        submitter's future comes back done (awaiting it does not yield), so a lone call
        never waits."""
        future: asyncio.Future[Scored] = self._loop.create_future()
        self._jobs.append(_Job(window, h, c, future))
        if len(self._jobs) >= len(self._open):
            self._flush()
        elif self._timer is None:
            if self._window_s > 0:
                self._timer = self._later(self._window_s, self._flush)
            else:
                self._timer = self._loop.call_soon(self._flush)
        return future

    def _maybe_flush_now(self) -> None:
        """A stream's gate closed: if everyone still open has submitted, run now."""
        if self._jobs and len(self._jobs) >= len(self._open):
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        jobs = [j for j in self._jobs if not j.future.done()]
        self._jobs = []
        if not jobs:
            return
        try:
            with engine_cpu(ENGINE):
                probs, h, c = self._run(jobs)
        except Exception as exc:
            log.exception("vad batch failed", extra={"windows": len(jobs)})
            for j in jobs:
                j.future.set_exception(exc)
            return
        self.runs += 1
        now = self._loop.time()
        _SIZES.observe(len(jobs))
        for i, j in enumerate(jobs):
            _WAITS.observe(now - j.at)
            j.future.set_result((float(probs[i]), h[:, i : i + 1], c[:, i : i + 1]))

    def _run(self, jobs: list[_Job]) -> tuple[F32, F32, F32]:
        if len(jobs) == 1:  # a lone call: no copies
            return self._model.run_batch(jobs[0].window[np.newaxis], jobs[0].h, jobs[0].c)
        return self._model.run_batch(
            np.stack([j.window for j in jobs]),
            np.concatenate([j.h for j in jobs], axis=1),
            np.concatenate([j.c for j in jobs], axis=1),
        )

    def close(self) -> None:
        """Fail what is pending (the loop is going away)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        jobs, self._jobs = self._jobs, []
        for j in jobs:
            if not j.future.done():
                j.future.set_exception(RuntimeError("vad batcher closed"))


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, VadBatcher]] = (
    weakref.WeakKeyDictionary()
)


def shared_batcher(model: BatchVadModel) -> VadBatcher:
    """The running loop's batcher for `model` (one per loop and model, made on first use)."""
    loop = asyncio.get_running_loop()
    per_loop = _SHARED.setdefault(loop, {})
    batcher = per_loop.get(id(model))
    if batcher is None or batcher._model is not model:
        batcher = per_loop[id(model)] = VadBatcher(model, loop)
    return batcher
