"""The process-wide inference engines: STT, TTS and VAD models, loaded once, shared by calls.

`Engines.load` sizes their threads (`pipeline.threads`), and builds STT and TTS as measured
engines: every decode and synthesis that reaches a model feeds the node's `LoadEstimator`
(`pipeline.load`), which admission reads (`node.slo_v2v_ms`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from prometheus_client import Gauge

from config.schema import Settings
from pipeline.devices import check_devices
from pipeline.engine_metrics import observe_batch
from pipeline.load import LoadEstimator
from pipeline.response import Synthesizer
from pipeline.stt import SttEngine, Transcriber
from pipeline.threads import limit_blas_threads, thread_budget, usable_cpus
from pipeline.tts import Samples, TtsEngine
from pipeline.turn_model import TurnModel, TurnModelEngine, load_engine
from pipeline.vad import Gate, SileroModel, VadModel, webrtc_gate

log = logging.getLogger(__name__)

QUEUE_DEPTH = Gauge(
    "voicenode_engine_queue_depth",
    "Jobs waiting for an inference engine (decodes for stt, syntheses for tts)",
    ["engine"],
)
HEADROOM = Gauge(
    "voicenode_projected_v2v_headroom_ms",
    "node.slo_v2v_ms minus the voice-to-voice p95 projected with one more call (negative: new"
    " calls are refused; NaN: no SLO set)",
)


def export_queue_depth(name: str, engine: SttEngine | TtsEngine) -> None:
    """Read `engine.depth` at each scrape (weakly: a closed engine reads as 0)."""
    ref = weakref.ref(engine)

    def depth() -> float:
        live = ref()
        return float(live.depth) if live is not None else 0.0

    QUEUE_DEPTH.labels(engine=name).set_function(depth)


def export_headroom(load: LoadEstimator) -> None:
    """Read `load.headroom_ms()` at each scrape (weakly: a dropped estimator reads as NaN)."""
    ref = weakref.ref(load)

    def headroom() -> float:
        live = ref()
        return live.headroom_ms() if live is not None else math.nan

    HEADROOM.set_function(headroom)


class MeasuredSttEngine(SttEngine):
    """The STT engine, each decode that reaches the model measured into `load`."""

    load: LoadEstimator | None = None

    async def transcribe(self, *args: Any, **kwargs: Any) -> str | None:
        if self.load is None:
            return await super().transcribe(*args, **kwargs)
        with self.load.measure("stt") as measuring:
            text = await super().transcribe(*args, **kwargs)
            if text is None:  # a skipped partial: it never reached the model
                measuring.skip()
            return text


class MeasuredTtsEngine(TtsEngine):
    """The TTS engine, each synthesis that reaches a worker measured into `load`."""

    load: LoadEstimator | None = None

    async def synthesize(self, text: str, voice: str = "", *, first: bool | None = None) -> Samples:
        if self.load is None or self.cached(text, voice):
            return await super().synthesize(text, voice, first=first)
        with self.load.measure("tts"):
            return await super().synthesize(text, voice, first=first)


def _tts_job(waited_s: float, service_s: float) -> None:
    observe_batch("tts", [waited_s])  # a synthesis is one job per model call


@dataclass
class Engines:
    """The models a call uses. Built by `load` for real; tests may assemble fakes."""

    settings: Settings
    stt: Transcriber
    tts: Synthesizer
    vad: VadModel
    vad_gate: Callable[[int], Gate] = webrtc_gate
    estimator: LoadEstimator | None = None
    """The engines' recent load, fed by their measured calls; None: not measured (fakes)."""
    turn: TurnModel | None = None
    """The audio end-of-turn model asked at caller pauses; None: off (`turn_model.enabled`)."""

    @classmethod
    def load_blocking(cls, settings: Settings, *, warm_up: bool = True) -> Engines:
        started = time.perf_counter()
        check_devices(settings)  # a GPU asked for and missing: DeviceError naming the setting
        budget = thread_budget(usable_cpus(), settings.stt, settings.tts)
        blas = limit_blas_threads(budget.blas_threads)  # (before any model runs)
        log.info("engine threads", extra=dataclasses.asdict(budget) | {"blas_libraries": len(blas)})
        stt_settings = msgspec.structs.replace(settings.stt, cpu_threads=budget.stt_threads)
        stt = MeasuredSttEngine(stt_settings)
        tts = MeasuredTtsEngine(
            settings.tts, workers=budget.tts_workers, threads=budget.tts_threads, on_job=_tts_job
        )
        vad = SileroModel(settings.vad.model or None, device=settings.vad.device)
        turn = None
        if settings.turn_model.enabled:  # a missing file: TurnModelError naming the setting
            turn = load_engine(
                settings.turn_model.model or None, threads=settings.turn_model.threads
            )
        if warm_up:
            stt.warm_up()
            tts.warm_up()
        load = LoadEstimator(
            time.monotonic,
            # a batching STT engine (CUDA) serves up to max_batch decodes per model call
            workers={"stt": stt.max_batch, "tts": budget.tts_workers},
            base_ms=settings.node.slo_base_ms,
            slo_ms=settings.node.slo_v2v_ms,
        )
        stt.load = tts.load = load
        stt.start()
        tts.start()
        export_queue_depth("stt", stt)
        export_queue_depth("tts", tts)
        export_headroom(load)
        log.info("engines loaded", extra={"seconds": round(time.perf_counter() - started, 3)})
        return cls(settings, stt, tts, vad, estimator=load, turn=turn)

    @classmethod
    async def load(cls, settings: Settings, *, warm_up: bool = True) -> Engines:
        """Load the models on a worker thread (the event loop keeps serving meanwhile)."""
        return await asyncio.to_thread(cls.load_blocking, settings, warm_up=warm_up)

    def close(self) -> None:
        for engine in (self.stt, self.tts, self.turn):
            if isinstance(engine, SttEngine | TtsEngine | TurnModelEngine):
                engine.close()
