"""The engines as the node loads them: real models, threads from the budget, and every decode
or synthesis that reaches a model measured into the load estimator (a cache hit or a skipped
partial is not)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from config.schema import NodeSettings, Settings
from media.frames import SAMPLE_RATE
from pipeline.engines import Engines
from pipeline.stt import SttEngine
from pipeline.threads import blas_threads, openblas_libraries, thread_budget, usable_cpus
from pipeline.tts import TtsEngine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def engines() -> Iterator[Engines]:
    settings = Settings(node=NodeSettings(slo_v2v_ms=60_000, slo_base_ms=400))
    loaded = Engines.load_blocking(settings, warm_up=False)
    try:
        yield loaded
    finally:
        loaded.close()


def test_the_engines_are_still_the_engine_types_and_sized_by_the_budget(
    engines: Engines,
) -> None:
    assert isinstance(engines.stt, SttEngine) and isinstance(engines.tts, TtsEngine)
    budget = thread_budget(usable_cpus(), engines.settings.stt, engines.settings.tts)
    assert engines.tts.workers == budget.tts_workers
    assert engines.estimator is not None and engines.estimator.slo_ms == 60_000


async def test_syntheses_and_decodes_feed_the_estimator(engines: Engines) -> None:
    load = engines.estimator
    assert load is not None
    tts, stt = engines.tts, engines.stt
    assert isinstance(tts, TtsEngine)
    before = load.samples("tts")
    audio = await tts.synthesize("Your table is booked for Friday at seven.")
    assert len(audio) > SAMPLE_RATE // 2
    assert load.samples("tts") == before + 1 and load.depth("tts") == 0
    await tts.synthesize("Your table is booked for Friday at seven.")  # from the cache
    assert load.samples("tts") == before + 1

    before = load.samples("stt")
    text = await stt.transcribe(audio, final=True)
    assert isinstance(text, str)
    assert load.samples("stt") == before + 1 and load.depth("stt") == 0

    projected = load.projected_v2v_ms()
    assert projected > 400  # the base plus what the engines took
    headroom = REGISTRY.get_sample_value("voicenode_projected_v2v_headroom_ms")
    assert headroom is not None and 0 < headroom < 60_000 - 400
    assert not load.saturated


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_engines_count_their_cpu_and_decodes(engines: Engines) -> None:
    tts, stt = engines.tts, engines.stt
    assert isinstance(tts, TtsEngine) and isinstance(stt, SttEngine)
    cpu = "voicenode_engine_cpu_seconds_total"
    decodes, audio_s = "voicenode_stt_decodes_total", "voicenode_stt_audio_seconds_total"
    before_tts = _sample(cpu, {"engine": "tts"})
    before = _sample(decodes, {"kind": "final"}), _sample(audio_s, {"kind": "final"})
    audio = await tts.synthesize("Your cleaning is on Tuesday at two.")
    assert _sample(cpu, {"engine": "tts"}) > before_tts
    await stt.transcribe(audio, final=True)
    assert _sample(decodes, {"kind": "final"}) == before[0] + 1
    seconds = _sample(audio_s, {"kind": "final"}) - before[1]
    assert seconds == pytest.approx(len(audio) / SAMPLE_RATE)


def test_numpys_blas_runs_on_the_calling_thread_once_the_engines_load(engines: Engines) -> None:
    libraries = openblas_libraries()
    if not libraries:
        pytest.skip("this numpy has no OpenBLAS")
    assert all(blas_threads(p) == 1 for p in libraries)
