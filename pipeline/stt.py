"""Streaming speech-to-text with faster-whisper.

`SttEngine` (`pipeline.stt_engine`, re-exported here): one Whisper model per process, decoding
on one owned worker thread in batches across calls (a few milliseconds' window,
`stt.batch_window_ms`, at most `stt.max_batch` decodes per model call, finals before partials,
one queued partial per utterance, a partial that finds the queue full skipped).
`SttStream`: one caller utterance — partial transcripts on a cadence while the caller talks
(longer when the engine is loaded), stabilised by local agreement (words two consecutive
hypotheses agree on are committed), and a speculative final decode that starts the moment
the caller pauses, so that when the turn ends the transcript is usually already there.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Hashable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pipeline.stt_engine import (
    PARTIALS_SKIPPED,
    SttEngine,
    SttError,
    default_model_path,
    drop_repeats,
    norm_word,
)

__all__ = [
    "PARTIALS_SKIPPED",
    "BatchingTranscriber",
    "SttEngine",
    "SttError",
    "SttStream",
    "Transcriber",
    "agreed_prefix",
    "default_model_path",
    "drop_repeats",
    "partial_interval",
]

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    async def transcribe(
        self,
        audio: npt.NDArray[np.int16],
        *,
        final: bool,
        prefix: str = "",
        context: str = "",
    ) -> str | None: ...


@runtime_checkable
class BatchingTranscriber(Protocol):
    """A transcriber shared by calls in batches: it takes the utterance a decode belongs to
    (one queued partial per utterance) and tells its load (the partial cadence follows it)."""

    @property
    def depth(self) -> int: ...

    @property
    def max_batch(self) -> int: ...

    async def transcribe(
        self,
        audio: npt.NDArray[np.int16],
        *,
        final: bool,
        prefix: str = "",
        context: str = "",
        stream: Hashable | None = None,
    ) -> str | None: ...


def partial_interval(base_s: float, depth: int, max_batch: int) -> float:
    """The partial cadence under load: `base_s` while the engine's next batch has room for the
    decodes waiting (`depth` < `max_batch`), one `base_s` longer per full batch queued ahead.
    Partials are a latency optimisation: when the engine is behind, fewer of them leave it to
    the finals."""
    return base_s * (1 + depth // max(1, max_batch))


_WORDS = re.compile(r"\S+")


def agreed_prefix(a: str, b: str) -> str:
    """The words `b` starts with that `a` also starts with (compared loosely), in `b`'s spelling."""
    wa, wb = _WORDS.findall(a), _WORDS.findall(b)
    n = 0
    for x, y in zip(wa, wb, strict=False):
        if norm_word(x) != norm_word(y):
            break
        n += 1
    return " ".join(wb[:n])


class SttStream:
    """One utterance's transcription: partials while speaking, a speculative final at pauses."""

    def __init__(
        self,
        engine: Transcriber,
        *,
        interval_s: float,
        on_partial: Callable[[str], None],
        tasks: set[asyncio.Task[Any]],
        on_speculated: Callable[[SttStream, str], None] | None = None,
        context: str = "",
    ) -> None:
        self._on_speculated = on_speculated
        self._context = context
        self._engine = engine
        self._batching = engine if isinstance(engine, BatchingTranscriber) else None
        self._interval = interval_s
        self._on_partial = on_partial
        self._tasks = tasks
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._samples = 0
        self._last_partial_at = -1e9
        self._partial_task: asyncio.Task[None] | None = None
        self._previous = ""
        self.committed = ""
        self.partial = ""
        self._speculation: asyncio.Task[str | None] | None = None

    def audio(self) -> npt.NDArray[np.int16]:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.int16)

    def push(self, samples: npt.NDArray[np.int16], now: float, *, speaking: bool) -> None:
        self._chunks.append(samples)
        self._samples += len(samples)
        if (
            speaking
            and now - self._last_partial_at >= self._cadence()
            and (self._partial_task is None or self._partial_task.done())
            and self._speculation is None
        ):
            self._last_partial_at = now
            self._partial_task = asyncio.create_task(self._run_partial(self.audio()))
            self._tasks.add(self._partial_task)
            self._partial_task.add_done_callback(self._tasks.discard)

    def _cadence(self) -> float:
        """Seconds between partials: `interval_s`, longer while the shared engine is behind."""
        if self._batching is None:
            return self._interval
        return partial_interval(self._interval, self._batching.depth, self._batching.max_batch)

    async def _decode(
        self, audio: npt.NDArray[np.int16], *, final: bool, prefix: str = ""
    ) -> str | None:
        if self._batching is not None:  # this utterance's decodes replace each other in its queue
            return await self._batching.transcribe(
                audio, final=final, prefix=prefix, context=self._context, stream=self
            )
        return await self._engine.transcribe(
            audio, final=final, prefix=prefix, context=self._context
        )

    async def _run_partial(self, audio: npt.NDArray[np.int16]) -> None:
        try:
            text = await self._decode(audio, final=False, prefix=self.committed)
        except SttError as exc:
            log.warning("partial decode failed", extra={"error": str(exc)})
            return
        if text is None:
            return
        self.committed = agreed_prefix(self._previous, text) if self._previous else ""
        self._previous = text
        self.partial = text
        self._on_partial(text)

    def speculate(self) -> None:
        """The caller paused: start decoding what we have (valid until speech resumes)."""
        self.cancel_speculation()
        if self._partial_task is not None and not self._partial_task.done():
            self._partial_task.cancel()  # still queued: skipped; already decoding: ignored
        self._speculation = asyncio.create_task(self._speculate(self.audio()))

    async def _speculate(self, audio: npt.NDArray[np.int16]) -> str | None:
        text = await self._decode(audio, final=True)
        if text:
            self.partial = text
            self._on_partial(text)  # the best transcript so far: it may shorten the turn window
            if self._on_speculated is not None:
                self._on_speculated(self, text)  # what `final()` returns unless speech resumes
        return text

    def cancel_speculation(self) -> None:
        if self._speculation is not None:
            self._speculation.cancel()
            self._speculation = None

    async def final(self) -> str:
        """The utterance's transcript: the speculative decode if speech did not resume."""
        if self._partial_task is not None and not self._partial_task.done():
            self._partial_task.cancel()
        spec = self._speculation
        if spec is None:
            audio = self.audio()
            return await self._decode(audio, final=True, prefix=self.committed) or ""
        self._speculation = None
        return await spec or ""

    def close(self) -> None:
        self.cancel_speculation()
        if self._partial_task is not None:
            self._partial_task.cancel()
