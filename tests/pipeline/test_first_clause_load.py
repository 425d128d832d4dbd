"""A reply that starts while the TTS engine has syntheses in it cuts its first clause short
(`pipeline.response.first_clause_words`): the caller's first audio waits behind them, and a
shorter first clause is the part of that wait the reply controls. Idle, short sentences stay
whole (the splitter's own limit)."""

from __future__ import annotations

import dataclasses

from agents.fake import ScriptedAgent
from pipeline.load import LoadEstimator
from pipeline.response import FIRST_CLAUSE_WORDS_UNDER_LOAD, first_clause_words
from pipeline.session import State
from tests.pipeline.test_session import Harness
from tests.support.load_fakes import ManualClock

REPLY = "I can book you in for a cleaning with Doctor Patel next Tuesday at two."


def estimator() -> LoadEstimator:
    return LoadEstimator(ManualClock(), workers={"stt": 1, "tts": 1}, base_ms=500.0)


def test_the_limit_follows_the_tts_engines_depth() -> None:
    load = estimator()
    assert first_clause_words(None) is None  # fakes: no estimator, the splitter's own
    assert first_clause_words(load) is None
    job = load.begin("tts")
    assert first_clause_words(load) == FIRST_CLAUSE_WORDS_UNDER_LOAD == 5
    load.end(job)
    assert first_clause_words(load) is None
    load.begin("stt")  # a decode in the STT engine does not delay synthesis
    assert first_clause_words(load) is None


async def first_clauses(*, tts_busy: bool) -> list[str]:
    agent = ScriptedAgent(greeting="Hello.", replies={"cleaning": REPLY})
    h = Harness(["I'd like a cleaning."], agent)
    load = estimator()
    h.engines = dataclasses.replace(h.engines, estimator=load)
    await h.start()
    await h.until(State.LISTENING)
    if tts_busy:
        load.begin("tts")  # another call's synthesis, still in the engine
    await h.say(0, 1.0)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    await h.finish()
    tts = h.engines.tts
    assert h.finals("agent")[-1].text == REPLY  # the whole reply is said either way
    texts: list[str] = tts.texts  # type: ignore[attr-defined]
    return texts[texts.index("Hello.") + 1 :]


async def test_under_load_the_first_clause_is_cut_at_five_words() -> None:
    assert await first_clauses(tts_busy=True) == [
        "I can book you in",
        "for a cleaning with Doctor Patel next Tuesday at two.",
    ]


async def test_idle_the_first_clause_keeps_the_splitters_limit() -> None:
    assert await first_clauses(tts_busy=False) == [
        "I can book you in for a cleaning",
        "with Doctor Patel next Tuesday at two.",
    ]
