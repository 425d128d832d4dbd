"""The agent's vocabulary reaches the recogniser as context, on every decode of the call."""

from __future__ import annotations

import asyncio

import msgspec

from agents.fake import ScriptedAgent
from agents.spec import AgentSpec
from agents.vocabulary import stt_context
from pipeline.fakes import FakeStt, utterance_audio
from pipeline.session import State
from pipeline.stt import SttStream, drop_repeats
from tests.pipeline.test_session import Harness

VOCABULARY = ["Bright Smile Dental", "Delta Dental", "Doctor Patel"]


async def test_a_stream_passes_its_context_to_every_decode() -> None:
    stt = FakeStt(["do you take delta dental"])
    tasks: set[asyncio.Task[object]] = set()
    stream = SttStream(
        stt, interval_s=0.0, on_partial=lambda _t: None, tasks=tasks, context="Delta Dental."
    )
    stream.push(utterance_audio(0, 0.5), 0.0, speaking=True)  # a partial
    await asyncio.gather(*tasks)
    stream.speculate()
    assert await stream.final() == "do you take delta dental"
    assert len(stt.contexts) == 2
    assert set(stt.contexts) == {"Delta Dental."}


async def test_the_session_gives_the_recogniser_the_agents_vocabulary() -> None:
    agent = ScriptedAgent(greeting="Hello.", replies={"dental": "Yes, we do."})
    h = Harness(["do you take delta dental"], agent)
    h.spec = msgspec.convert(
        {"name": "t", "kind": "llm", "llm": {}, "vocabulary": VOCABULARY}, AgentSpec
    )
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 1.0)
    await h.until(State.AGENT_SPEAKING)
    stt = h.engines.stt
    assert isinstance(stt, FakeStt)
    assert stt.contexts and set(stt.contexts) == {stt_context(VOCABULARY)}
    assert stt_context(VOCABULARY) == "Bright Smile Dental, Delta Dental, Doctor Patel."
    await h.finish()


def test_a_sentence_written_twice_is_kept_once() -> None:
    assert drop_repeats("Are you open on Monday? Are you open on Monday?") == (
        "Are you open on Monday?"
    )
    assert drop_repeats("Hi, a cleaning. Hi, a cleaning. Hi, a cleaning.") == "Hi, a cleaning."
    assert drop_repeats("Hello? Hello? Anyone there?") == "Hello? Anyone there?"
    assert drop_repeats("It costs 3.5 dollars. It is fine.") == "It costs 3.5 dollars. It is fine."
    assert drop_repeats("one one one one, two two") == "one one one one, two two"
    assert drop_repeats("") == ""
