"""Metrics every shared inference engine reports (STT, TTS, VAD), labelled by `engine`.

- `voicenode_engine_queue_wait_seconds`: how long each job waited between being queued and
  being taken into a model call (the batch window included);
- `voicenode_engine_batch_size`: how many jobs each model call ran together.

The queue depth gauge (`voicenode_engine_queue_depth`) is exported by `pipeline.engines`.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Histogram

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
