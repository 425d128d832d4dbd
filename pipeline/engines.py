"""The process-wide inference engines: STT, TTS and VAD models, loaded once, shared by calls."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Gauge

from config.schema import Settings
from pipeline.response import Synthesizer
from pipeline.stt import SttEngine, Transcriber
from pipeline.tts import TtsEngine
from pipeline.vad import Gate, SileroModel, VadModel, webrtc_gate

log = logging.getLogger(__name__)

QUEUE_DEPTH = Gauge(
    "voicenode_engine_queue_depth",
    "Jobs waiting for an inference engine (decodes for stt, syntheses for tts)",
    ["engine"],
)


def export_queue_depth(name: str, engine: SttEngine | TtsEngine) -> None:
    """Read `engine.depth` at each scrape (weakly: a closed engine reads as 0)."""
    ref = weakref.ref(engine)

    def depth() -> float:
        live = ref()
        return float(live.depth) if live is not None else 0.0

    QUEUE_DEPTH.labels(engine=name).set_function(depth)


@dataclass
class Engines:
    """The models a call uses. Built by `load` for real; tests may assemble fakes."""

    settings: Settings
    stt: Transcriber
    tts: Synthesizer
    vad: VadModel
    vad_gate: Callable[[int], Gate] = webrtc_gate

    @classmethod
    def load_blocking(cls, settings: Settings, *, warm_up: bool = True) -> Engines:
        started = time.perf_counter()
        stt = SttEngine(settings.stt)
        tts = TtsEngine(settings.tts)
        vad = SileroModel(settings.vad.model or None)
        if warm_up:
            stt.warm_up()
            tts.warm_up()
        stt.start()
        tts.start()
        export_queue_depth("stt", stt)
        export_queue_depth("tts", tts)
        log.info("engines loaded", extra={"seconds": round(time.perf_counter() - started, 3)})
        return cls(settings, stt, tts, vad)

    @classmethod
    async def load(cls, settings: Settings, *, warm_up: bool = True) -> Engines:
        """Load the models on a worker thread (the event loop keeps serving meanwhile)."""
        return await asyncio.to_thread(cls.load_blocking, settings, warm_up=warm_up)

    def close(self) -> None:
        for engine in (self.stt, self.tts):
            if isinstance(engine, SttEngine | TtsEngine):
                engine.close()
