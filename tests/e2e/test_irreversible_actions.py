"""Irreversible actions over AudioSocket with the real models (issue 22): the node does not hang up
on a misheard line, still hangs up on a clear goodbye, and a caller who speaks up during the
goodbye keeps the call.

The caller's lines are Piper speech through a mu-law phone line, streamed in real time by a
protocol-exact AudioSocket client to the node running the demo receptionist. What the recogniser
makes of a line varies ("My tooth hurts" has come out "My two thirds"), so the checks are on
what the node did (the call ended or not, and how), never on exact transcripts or on timings.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY

from agents.base import AgentContext
from agents.llm import CLOSING_NOTE, LlmAgent
from agents.spec import AgentSpec
from pipeline.engines import Engines
from pipeline.events import CallEnded, StateChanged, Transcript
from pipeline.tts import TtsEngine
from tests.support.audiosocket_client import SLIN, AudioSocketClient
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.speech import words
from voicenode.simulate import simulate

from .test_audiosocket_call import Caller, Env, Events, env, phone_line

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
__all__ = ["env"]  # the fixture
GOODBYE_LINE = "Have a great day!"
SLIN_RATE = 8000
Say = Callable[[str], npt.NDArray[np.int16]]


def hangups_cancelled() -> float:
    value = REGISTRY.get_sample_value(
        "voicenode_closing_actions_cancelled_total", {"action": "hangup"}
    )
    assert value is not None
    return value


@dataclass
class Line:
    client: AudioSocketClient
    caller: Caller
    events: Events
    tts: TtsEngine

    def say(self, text: str) -> None:
        self.caller.say(phone_line(self.tts, text))

    def replies(self) -> list[str]:
        """What the agent said in full (not the lines the caller cut short)."""
        return [
            e.text
            for e in self.events.of(Transcript)
            if isinstance(e, Transcript) and e.role == "agent" and not e.interrupted
        ]

    async def next_reply(self, before: int) -> str:
        """The agent's next full reply after the first `before`, or a failure if the call ends."""
        ev = self.events
        await ev.wait(lambda: len(self.replies()) > before or ev.of(CallEnded), limit_s=60)
        assert len(self.replies()) > before, (ev.user_lines(), ev.agent_lines())
        return self.replies()[-1]

    async def hang_up(self) -> CallEnded:
        """The caller hangs up; the call's end as the node saw it."""
        await self.caller.stop()
        await self.client.send_hangup()
        await self.events.wait(lambda: self.events.of(CallEnded), limit_s=30)
        ended = self.events.of(CallEnded)[0]
        assert isinstance(ended, CallEnded)
        return ended


@pytest.fixture
async def line(env: Env, engines: Engines) -> AsyncIterator[Line]:
    tts = engines.tts
    assert isinstance(tts, TtsEngine)
    client = await AudioSocketClient.connect(env.port)
    await client.send_uuid(uuid.uuid4())
    caller = Caller(client)
    try:
        await env.events.wait(lambda: env.events.agent_lines())  # the greeting
        yield Line(client, caller, env.events, tts)
    finally:
        await caller.stop()
        await client.close()


async def the_call_goes_on(line: Line) -> None:
    """The caller asks for the opening hours and is answered, then hangs up: the call was up."""
    before = len(line.replies())
    line.say("What are your opening hours?")
    reply = await line.next_reply(before)
    assert "monday" in reply.lower(), line.events.agent_lines()
    ended = await line.hang_up()
    assert ended.reason == "hangup", line.events.agent_lines()


async def test_an_urgent_line_that_shares_words_with_goodbye_does_not_end_the_call(
    line: Line,
) -> None:
    line.say("My tooth hurts, can someone see me today?")
    reply = await line.next_reply(1)
    ev = line.events
    assert not ev.of(CallEnded), (ev.user_lines(), ev.agent_lines())
    assert GOODBYE_LINE not in reply, (ev.user_lines(), reply)
    await the_call_goes_on(line)
    assert GOODBYE_LINE not in " ".join(ev.agent_lines()), (ev.user_lines(), ev.agent_lines())


async def test_a_clear_goodbye_still_ends_the_call(line: Line) -> None:
    cancelled = hangups_cancelled()
    line.say("No, that's all. Goodbye.")
    ev = line.events
    await ev.wait(lambda: ev.of(CallEnded), limit_s=60)
    ended = ev.of(CallEnded)[0]
    assert isinstance(ended, CallEnded) and ended.reason == "completed", (
        ev.user_lines(),
        ev.agent_lines(),
    )
    assert GOODBYE_LINE in ev.agent_lines()[-1]
    assert hangups_cancelled() == cancelled
    assert words(ev.user_lines()[-1]) & {"goodbye", "bye"}, ev.user_lines()


async def test_a_caller_who_speaks_up_during_the_goodbye_keeps_the_call(line: Line) -> None:
    ev = line.events
    line.say("Goodbye.")
    # The goodbye starts playing (the agent speaks after the caller's line was transcribed)...
    await ev.wait(lambda: ev.user_lines(), limit_s=60)

    def goodbye_playing() -> bool:
        kinds = [e for _, e in ev.seen]
        said = next(
            i
            for i, e in enumerate(kinds)
            if isinstance(e, Transcript) and e.role == "user" and e.final
        )
        return any(
            isinstance(e, StateChanged) and e.state == "agent_speaking" for e in kinds[said:]
        )

    await ev.wait(goodbye_playing, limit_s=60)
    # ... and once a second of it has reached the caller ("Thanks for calling Bright ..."),
    # they speak up (while it plays, or in the grace period after it).
    start = len(line.client.audio(SLIN))
    await line.client.wait_for(lambda: len(line.client.audio(SLIN)) - start >= SLIN_RATE)
    before = len(line.replies())
    cancelled = hangups_cancelled()
    line.say("Wait, one more thing.")
    await line.next_reply(before)  # (fails if the call ends instead)
    assert not ev.of(CallEnded), (ev.user_lines(), ev.agent_lines())
    assert hangups_cancelled() == cancelled + 1
    await the_call_goes_on(line)


async def test_an_llm_agents_end_call_waits_for_the_grace_period(
    engines: Engines, say: Say
) -> None:
    """The model says goodbye and calls `end_call`; the caller speaks up after the goodbye has
    played (within the agent's grace period): the hang-up is called off and the model gets the
    caller's words. (The grace period is long here so that "after the line" holds whatever
    the line's length; the caller starts 2.5 s after the agent started speaking.)"""
    async with LlmDouble(per_turn=True) as double, httpx.AsyncClient() as http:
        double.script(
            Reply(
                tokens=["Thanks ", "for ", "calling, ", "goodbye!"],
                tool_calls=[ScriptedToolCall("end_call", {}, id="call_e")],
            ),
            Reply(tokens=["Sure, ", "what ", "else ", "can ", "I ", "do?"]),
        )
        spec = msgspec.convert(
            {
                "name": "assistant",
                "kind": "llm",
                "greeting": "Hello, this is the clinic assistant.",
                "prompt": "You answer questions for a dental clinic.",
                "llm": {"base_url": double.base_url, "model": "test"},
                "tools": [{"name": "end_call"}],
                "turn": {"closing_grace_ms": 5000},
            },
            AgentSpec,
        )
        ctx = AgentContext(
            call_id="llm-grace", tenant_id="demo", http=http, url_allowlist=("127.0.0.1",)
        )
        cancelled = hangups_cancelled()
        lines = [say("Thank you, goodbye."), say("Wait, one more thing.")]
        result = await simulate(engines, spec, lines, agent=LlmAgent(spec, ctx), barge_in_after=2.5)

    turns = [(t.role, t.text, t.interrupted) for t in result.turns]
    assert result.ended is not None and result.ended.reason == "hangup", turns  # the caller's
    assert result.call.hung_up != "completed", turns
    assert hangups_cancelled() == cancelled + 1, turns
    # One request per turn (a request made at a pause the caller went on past is left out)
    assert len(double.turn_requests) == 2, turns
    second = double.turn_requests[1]["messages"]
    assert second[0]["content"].endswith(CLOSING_NOTE)  # the node's note on ending calls
    assert words(second[-1]["content"]) & {"wait", "more", "thing"}, second[-1]
    assert [t.text for t in result.turns if t.role == "agent"][-1] == "Sure, what else can I do?"
