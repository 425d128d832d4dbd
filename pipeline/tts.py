"""Streaming text-to-speech with Piper.

`TtsEngine`: Piper voices loaded once per process (cached by path), synthesis on owned worker
threads (`pipeline.tts_pool`: the first clause of a reply before later ones, `workers` at
once, each with `threads` onnxruntime threads); output resampled to 16 kHz. Loading and running
a voice is `media.speech`'s, which the bench's caller voice shares. `ClauseSplitter`
turns an agent's streamed text into speakable clauses: the first one as early as possible (at
a comma), later ones at sentence ends, so the caller hears the first words while the rest is
generated. Each comes out as a `Clause` (a `str` that knows its place in the reply), which is
how the engine tells a first clause from a later one through any `Synthesizer` in between.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from config.schema import TtsSettings
from core.errors import EngineError
from media import speech
from media.speech import default_voice_path
from pipeline.devices import DeviceError, check_session, onnx_providers
from pipeline.engine_metrics import engine_cpu
from pipeline.handoff import deliver
from pipeline.tts_pool import FIRST, LATER, SynthesisPool

log = logging.getLogger(__name__)

Samples = npt.NDArray[np.int16]


class TtsError(EngineError, RuntimeError):
    """The TTS engine could not load its voice, is not running, or failed a clause (a
    `RuntimeError` too, as it always was)."""

    retryable = False


class TtsBusy(TtsError):
    """`tts.queue_size` clauses already wait for the worker: this one is refused rather than
    queued behind them (it would be late anyway); the caller speaks without it."""

    retryable = True


CACHE_ENTRIES = 512
"""Synthesised clauses kept per process (about 1.5 MB per 100 short clauses)."""
CACHE_MAX_CHARS = 160


class Clause(str):
    """A clause of one reply as `ClauseSplitter` cut it; `position` 0 is the reply's first."""

    position: int

    def __new__(cls, text: str, position: int) -> Clause:
        clause = super().__new__(cls, text)
        clause.position = position
        return clause


def is_first_clause(text: str) -> bool:
    """A reply's first clause, or text not cut from a reply (a prompt said on its own)."""
    return not isinstance(text, Clause) or text.position == 0


def load_piper(path: str, threads: int = 0, device: str = "cpu") -> Any:
    """A Piper voice on `device` (`tts.device`: `cuda` is onnxruntime's CUDA provider, or
    `DeviceError`) with `threads` onnxruntime intra-op threads (0: onnxruntime's default, one
    per core): `media.speech.load_piper`, with the device checked."""
    voice = speech.load_piper(path, threads, onnx_providers("tts.device", device))
    check_session("tts.device", device, voice.session)
    return voice


class TtsEngine:
    """Process-wide Piper voices and the synthesis workers (`workers` of them, each running
    with `threads` onnxruntime threads; `pipeline.threads` sizes both for the node)."""

    def __init__(
        self,
        settings: TtsSettings,
        *,
        workers: int = 1,
        threads: int = 0,
        on_job: Callable[[float, float], None] | None = None,
    ) -> None:
        self._settings = settings
        self._threads = threads
        self._voices: dict[str, Any] = {}
        self._voices_lock = threading.Lock()
        self.default_voice = str(settings.voice or default_voice_path())
        self.voice(self.default_voice)
        self._pool = SynthesisPool(
            self._render, workers=workers, queue_size=settings.queue_size, on_job=on_job
        )
        self._cache: collections.OrderedDict[tuple[str, str], Samples] = collections.OrderedDict()
        self.cache_hits = 0

    @property
    def speaker_id(self) -> int | None:
        """The speaker of a multi-speaker voice (`tts.speaker_id`) the engine speaks with."""
        return self._settings.speaker_id

    @property
    def depth(self) -> int:
        """Clauses waiting for a worker."""
        return self._pool.depth

    @property
    def workers(self) -> int:
        return self._pool.workers

    @property
    def syntheses(self) -> int:
        return self._pool.jobs

    @property
    def busy_s(self) -> float:
        return self._pool.busy_s

    def voice(self, path: str) -> Any:
        """Load (once) and return the Piper voice at `path`."""
        with self._voices_lock:
            if path not in self._voices:
                if not Path(path).is_file():
                    raise TtsError(f"tts.voice: {path} is not a Piper .onnx voice file")
                try:
                    self._voices[path] = load_piper(path, self._threads, self._settings.device)
                except DeviceError:
                    raise
                except Exception as exc:  # piper raises assorted errors for bad files
                    raise TtsError(f"tts.voice: cannot load {path}: {exc}") from exc
            return self._voices[path]

    def start(self) -> None:
        self._pool.start()

    def close(self) -> None:
        """Stop the workers; clauses still waiting fail with `TtsError`."""
        for job in self._pool.stop():  # failed at once, not after the workers' last jobs
            deliver(job.loop, job.future, exc=TtsError("the TTS engine closed"))
        self._pool.close()

    def warm_up(self) -> None:
        self.synthesize_blocking("Hello.", self.default_voice)

    def cached(self, text: str, voice: str = "") -> bool:
        """`synthesize(text, voice)` would be served from the cache, without a worker."""
        return (voice or self.default_voice, str(text)) in self._cache

    async def synthesize(self, text: str, voice: str = "", *, first: bool | None = None) -> Samples:
        """16 kHz int16 speech for `text` (one clause or sentence). `first`: it opens a reply
        (synthesized before later clauses); by default, as `is_first_clause(text)` says."""
        if not self._pool.running:
            raise TtsError("the TTS engine is not running")
        key = (voice or self.default_voice, str(text))
        if (hit := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return hit
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Samples] = loop.create_future()
        priority = FIRST if (is_first_clause(text) if first is None else first) else LATER
        try:
            queued = self._pool.submit(key[1], key[0], priority=priority, loop=loop, future=fut)
        except RuntimeError as exc:
            raise TtsError("the TTS engine is not running") from exc
        if not queued:
            waiting = self._settings.queue_size
            raise TtsBusy(f"{waiting} clauses already wait for synthesis")
        audio = await fut
        if len(text) <= CACHE_MAX_CHARS:
            # Agents repeat their prompts ("What day would you like?"): keep recent clauses.
            audio.setflags(write=False)
            self._cache[key] = audio
            if len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return audio

    def synthesize_blocking(
        self,
        text: str,
        voice: str = "",
        *,
        length_scale: float | None = None,
        deterministic: bool = False,
    ) -> Samples:
        """16 kHz speech for `text` in the calling thread (`media.speech.synthesize`):
        `deterministic` turns Piper's noise off (same text, same audio), for test callers and
        benchmarks that must be repeatable."""
        return speech.synthesize(
            self.voice(voice or self.default_voice),
            text,
            speaker_id=self._settings.speaker_id,
            length_scale=length_scale or self._settings.length_scale,
            deterministic=deterministic,
        )

    def _render(self, text: str, voice: str) -> Samples:
        """A worker's job (on its thread)."""
        try:
            with engine_cpu("tts"):
                return self.synthesize_blocking(
                    text, voice, deterministic=self._settings.deterministic
                )
        except Exception as exc:  # a bad text or voice fails this clause only
            raise TtsError(str(exc)) from exc


def trim_leading_silence(audio: Samples, *, threshold: int = 300, keep: int = 160) -> Samples:
    """Drop leading near-silence, keeping `keep` samples (10 ms) before the first sound."""
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > threshold)
    if len(loud) == 0:
        return audio
    return audio[max(0, int(loud[0]) - keep) :]


_ABBREV = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "no"}
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")
_SOFT_BREAKS = frozenset(
    "and but so or because which that when while if to for with at on in about after before "
    "until unless".split()
)
"""Words a long first clause may be cut before (the cut keeps them with what follows)."""
_SOFT_MIN_WORDS = 4
"""A first clause cut before a soft break has at least this many words."""


class ClauseSplitter:
    """Feed streamed text; get back clauses ready to speak."""

    def __init__(
        self,
        *,
        first_clause_min_words: int = 2,
        clause_min_words: int = 6,
        first_clause_max_words: int = 8,
    ) -> None:
        """The first clause is cut at its first comma after `first_clause_min_words`, and, if a
        long first sentence has none by `first_clause_max_words`, before a conjunction or
        preposition (else at that word): the caller hears the reply start while the rest is
        synthesized. Later clauses run to a comma after `clause_min_words`, or a sentence end."""
        self._buf = ""
        self._emitted = 0
        self._first_min = first_clause_min_words
        self._min = clause_min_words
        self._first_max = first_clause_max_words

    def push(self, text: str) -> list[str]:
        self._buf += text
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                return out
            clause, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if clause:
                out.append(Clause(clause, self._emitted))
                self._emitted += 1

    def flush(self) -> list[str]:
        clause, self._buf = self._buf.strip(), ""
        if clause:
            self._emitted += 1
            return [Clause(clause, self._emitted - 1)]
        return []

    def _find_cut(self) -> int | None:
        for m in _SENTENCE_END.finditer(self._buf):
            before = self._buf[: m.start()].rsplit(None, 1)
            word = before[-1].lower() if before else ""
            if word in _ABBREV or (len(word) == 1 and word.isalpha()):
                continue
            return m.end()
        min_words = self._first_min if self._emitted == 0 else self._min
        for m in _CLAUSE_END.finditer(self._buf):
            if len(self._buf[: m.start()].split()) >= min_words:
                return m.end()
        return self._long_first_cut() if self._emitted == 0 else None

    def _long_first_cut(self) -> int | None:
        """Where a long first sentence without a comma is cut (None: not long yet). Only
        whole words count (the last one may still be streaming)."""
        words = list(re.finditer(r"\S+", self._buf))
        whole = words if self._buf[-1:].isspace() else words[:-1]
        if len(whole) <= self._first_max:
            return None
        for i in range(self._first_max, _SOFT_MIN_WORDS - 1, -1):
            if whole[i].group().lower() in _SOFT_BREAKS:
                return whole[i].start()
        return whole[self._first_max].start()
