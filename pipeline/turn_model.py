"""The audio end-of-turn model: Smart Turn v3.2 (ONNX, BSD-2-Clause), shared by every call.

At a pause in the caller's speech the session asks `TurnModelEngine.probability` how likely
it is that the caller has finished, from the last 8 s of the caller's audio (prosody, not only
words). The model takes Whisper-style log-mel features (80 bins x 800 frames of 10 ms) of the
zero-mean, unit-variance waveform, left-padded with silence to 8 s, and returns the
probability of "complete" (its graph ends in a sigmoid). `features` follows the reference's
recipe exactly (tests/pipeline/test_turn_model_features.py pins it). One onnxruntime session
per process on one owned worker thread; requests from all calls that wait while it runs are
scored together as one batch.

The model file ships inside the `pipecat-ai` wheel on PyPI; `make venv`
(`deploy/models/fetch_smart_turn.py`) takes it from there at install time (checksummed) and
puts it at `default_model_path()`. The node never downloads it at run time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Histogram

from core.errors import EngineError
from media.frames import SAMPLE_RATE
from pipeline.engine_metrics import engine_cpu

log = logging.getLogger(__name__)

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
WINDOW_S = 8
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE
N_FFT, HOP, N_MELS = 400, 160, 80

PREDICTIONS = Counter(
    "voicenode_turn_model_predictions_total", "End-of-turn predictions of the audio turn model"
)
BATCH_SIZE = Histogram(
    "voicenode_turn_model_batch_size",
    "Pauses scored together in one run of the audio turn model",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16),
)


class TurnModelError(EngineError, RuntimeError):
    """The turn model could not load, has stopped, or failed a run (a `RuntimeError` too, as
    it always was)."""

    retryable = False


def default_model_path() -> Path:
    """Where `make venv` installs the model: the environment's `share/voicenode/models/`."""
    return Path(sys.prefix) / "share" / "voicenode" / "models" / MODEL_FILE


class TurnModel(Protocol):
    """The seam: end-of-turn probabilities for a pause (the fake is `RecordedTurnModel`)."""

    async def probability(self, audio: npt.NDArray[np.int16]) -> float: ...


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The Slaney mel scale (Whisper's): linear below 1 kHz, logarithmic above."""
    log = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(hz < 1000.0, 3.0 * hz / 200.0, log)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    exp = 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0)
    return np.where(mel < 15.0, 200.0 * mel / 3.0, exp)


def _mel_filters() -> npt.NDArray[np.float64]:
    """[80 mel bins, 201 FFT bins]: Slaney-normalised triangles from 0 to 8 kHz."""
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array([SAMPLE_RATE / 2.0]))[0], N_MELS + 2))
    bins = np.linspace(0.0, SAMPLE_RATE / 2.0, N_FFT // 2 + 1)[:, None]
    rise = (bins - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    fall = (edges[None, 2:] - bins) / (edges[2:] - edges[1:-1])
    triangles = np.maximum(0.0, np.minimum(rise, fall)) * (2.0 / (edges[2:] - edges[:-2]))
    return np.ascontiguousarray(triangles.T, dtype=np.float64)


_MEL = _mel_filters()
_HANN = np.hanning(N_FFT + 1)[:-1]  # periodic, as torch's


def features(audio: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """The model's input for one pause: [80, 800] log-mel of the last 8 s (16 kHz int16).

    The reference's recipe step for step (pipecat's `LocalSmartTurnAnalyzerV3`, i.e.
    transformers' `WhisperFeatureExtractor(chunk_length=8)`, `do_normalize=True`): zero-mean,
    unit-variance in float32 over the 8 s, the spectrogram in float64. The model is quantized
    (int8): features 1e-5 apart (a float32 FFT) move its output by up to 0.05."""
    x = audio[-WINDOW_SAMPLES:].astype(np.float32) / 32768.0
    x = np.pad(x, (WINDOW_SAMPLES - x.size, 0))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=-1)) ** 2
    log = np.log10(np.maximum(_MEL @ power.T, 1e-10))[:, :-1]  # (the last frame dropped)
    log = np.maximum(log, log.max() - 8.0)
    return np.asarray((log + 4.0) / 4.0, dtype=np.float32)


class SmartTurnModel:
    """The ONNX session. `predict` scores a batch of feature matrices (thread-safe)."""

    def __init__(self, path: str | Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime

        model = Path(path or default_model_path())
        if not model.is_file():
            raise TurnModelError(
                f"turn_model.model: no Smart Turn model at {model} (make venv installs it; "
                "set turn_model.enabled = false to run without it)"
            )
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                str(model), providers=["CPUExecutionProvider"], sess_options=opts
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise TurnModelError(f"turn_model.model: cannot load {model}: {exc}") from exc

    def predict(self, batch: Sequence[npt.NDArray[np.float32]]) -> list[float]:
        stacked = np.stack(batch).astype(np.float32)
        out = self._session.run(None, {"input_features": stacked})[0]
        return [float(p) for p in np.asarray(out).reshape(-1)]


@dataclass
class _Job:
    audio: npt.NDArray[np.int16]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[float]


class TurnModelEngine:
    """One `SmartTurnModel` on one owned thread. Every request waiting when a run starts goes
    into that run (at most `max_batch`): a pause never waits for more than the run before it."""

    def __init__(self, model: SmartTurnModel, *, max_batch: int = 8) -> None:
        self._model = model
        self._max_batch = max_batch
        self._jobs: list[_Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="turn-model", daemon=True)
        self.runs = 0
        self.busy_s = 0.0

    def start(self) -> None:
        self._thread.start()

    def warm_up(self) -> None:
        self._model.predict([features(np.zeros(SAMPLE_RATE, dtype=np.int16))])

    @property
    def depth(self) -> int:
        return len(self._jobs)

    async def probability(self, audio: npt.NDArray[np.int16]) -> float:
        loop = asyncio.get_running_loop()
        job = _Job(audio, loop, loop.create_future())
        with self._cond:
            if self._closed:
                raise TurnModelError("the turn model has stopped")
            self._jobs.append(job)
            self._cond.notify()
        return await job.future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            pending, self._jobs = self._jobs, []
            self._cond.notify()
        for job in pending:
            _settle(job, TurnModelError("the turn model has stopped"))
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _take(self) -> list[_Job]:
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            batch, self._jobs = self._jobs[: self._max_batch], self._jobs[self._max_batch :]
            return batch

    def _work(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            started = time.perf_counter()
            with engine_cpu("turn_model"):
                self._run(batch)
            self.runs += 1
            self.busy_s += time.perf_counter() - started
            BATCH_SIZE.observe(len(batch))

    def _run(self, batch: list[_Job]) -> None:
        """Score the batch; if the run fails, each job alone, so a bad input fails only itself."""
        try:
            scores = self._model.predict([features(job.audio) for job in batch])
        except Exception as exc:
            if len(batch) > 1:
                for job in batch:
                    self._run([job])
                return
            log.warning("turn model run failed", extra={"error": str(exc)})
            _settle(batch[0], TurnModelError(f"turn model run failed: {exc}"))
            return
        PREDICTIONS.inc(len(batch))
        for job, score in zip(batch, scores, strict=True):
            _settle(job, score)


def _settle(job: _Job, result: float | BaseException) -> None:
    def settle() -> None:
        if job.future.done():
            return
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the caller's loop has closed


def load_engine(path: str | Path | None = None, *, threads: int = 1) -> TurnModelEngine:
    """The engine with its model loaded and warmed up, its thread started."""
    engine = TurnModelEngine(SmartTurnModel(path, threads=threads))
    engine.warm_up()
    engine.start()
    return engine
