"""Metrics every shared inference engine reports (STT, TTS, VAD, the turn model), labelled by
`engine`.

- `voicenode_engine_queue_wait_seconds`: how long each job waited between being queued and
  being taken into a model call (the batch window included);
- `voicenode_engine_batch_size`: how many jobs each model call ran together;
- `voicenode_engine_cpu_seconds_total`: the CPU time of the engine's model calls (features,
  model run and post-processing), read on the thread that made each call (`engine_cpu`), for
  the engines that compute on that thread: `tts` (Piper), `vad` (Silero, on the event loop)
  and `turn_model`. With one intra-op thread each (a small machine, `pipeline.threads`) that
  is all of it; more intra-op threads' share is not counted. STT is not among them:
  CTranslate2 decodes on a thread of its own (the STT worker only waits for it).
  Against `process_cpu_seconds_total` it says where a node's CPU goes.

The queue depth gauge (`voicenode_engine_queue_depth`) is exported by `pipeline.engines`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

QUEUE_WAIT = Histogram(
    "voicenode_engine_queue_wait_seconds",
    "Seconds a job waited for its inference engine, from queued to taken into a model call",
    ["engine"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BATCH_SIZE = Histogram(
    "voicenode_engine_batch_size",
    "Jobs an inference engine ran together in one model call",
    ["engine"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
)
ENGINE_CPU = Counter(
    "voicenode_engine_cpu_seconds_total",
    "CPU seconds of an inference engine's model calls, on the thread that made each call"
    " (other intra-op threads not counted)",
    ["engine"],
)


def observe_waits(engine: str, waits: Sequence[float]) -> None:
    """Jobs taken from the queue, each having waited `waits[i]` seconds."""
    wait = QUEUE_WAIT.labels(engine=engine)
    for seconds in waits:
        wait.observe(seconds)


def observe_call(engine: str, size: int) -> None:
    """One model call that ran `size` jobs together."""
    BATCH_SIZE.labels(engine=engine).observe(size)


def observe_batch(engine: str, waits: Sequence[float]) -> None:
    """Jobs taken from the queue and run in one model call (both of the above)."""
    if waits:
        observe_waits(engine, waits)
        observe_call(engine, len(waits))


@contextmanager
def engine_cpu(engine: str, clock: Callable[[], float] = time.thread_time) -> Iterator[None]:
    """Count the CPU time `clock` (the calling thread's) reads inside the block as `engine`'s,
    raised or not."""
    started = clock()
    try:
        yield
    finally:
        ENGINE_CPU.labels(engine=engine).inc(max(0.0, clock() - started))
