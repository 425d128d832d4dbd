"""A call session with an LLM agent that speculates: the reply starts when the caller pauses
(a real streaming request to the `LlmDouble`), is held, and plays at the endpoint; or is dropped
when the caller goes on (request cancelled, tokens counted, a held tool call never run).

The session runs on a virtual clock; the double answers in real time. The tests wait (bounded,
in real time, the virtual clock standing still) for the held reply before the endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from prometheus_client import REGISTRY

from agents.base import AgentContext
from agents.llm import LlmAgent
from agents.spec import AgentSpec, LlmSettings, ToolSpec
from pipeline.fakes import FakeTts
from pipeline.session import State
from tests.pipeline.test_session import Harness
from tests.support.llm_double import LlmDouble, Reply, Route, ScriptedToolCall

PROMPT = "You answer for a dental clinic."
LIMIT_S = 10.0


def agent_for(
    double: LlmDouble, http: httpx.AsyncClient, *, tools: Sequence[ToolSpec] = (), **llm: Any
) -> LlmAgent:
    spec = AgentSpec(
        name="clinic",
        kind="llm",
        greeting="Hi.",
        prompt=PROMPT,
        llm=LlmSettings(base_url=double.base_url, model="test", **llm),
        tools=[*tools],
    )
    ctx = AgentContext(call_id="c1", tenant_id="t1", http=http, url_allowlist=["127.0.0.1"])
    return LlmAgent(spec, ctx)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counts() -> tuple[float, float, float]:
    return (
        metric("voicenode_llm_speculative_total", outcome="used"),
        metric("voicenode_llm_speculative_total", outcome="dropped"),
        metric("voicenode_llm_speculative_wasted_tokens_total"),
    )


def since(before: tuple[float, float, float]) -> tuple[float, ...]:
    return tuple(now - then for now, then in zip(counts(), before, strict=True))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the double and the agent, in real time (the virtual clock stands still)."""
    async with asyncio.timeout(LIMIT_S):
        while not condition():  # noqa: ASYNC110 - the fakes keep records, not events
            await asyncio.sleep(0.005)


def fake_tts(h: Harness) -> FakeTts:
    assert isinstance(h.engines.tts, FakeTts)
    return h.engines.tts


async def test_a_reply_made_in_the_pause_plays_at_the_endpoint_from_its_one_request() -> None:
    before = counts()
    async with LlmDouble() as double, httpx.AsyncClient() as http:
        double.script(Reply(tokens=["We", " open", " at", " nine."]))
        h = Harness(["What are your hours?"], agent_for(double, http))
        tts = fake_tts(h)
        s = await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 1.0)
        await h.silence(0.3)  # paused: the reply starts, held; the 400 ms window is not over
        await until(lambda: "We open at nine." in tts.texts)  # synthesized, not played
        assert s.state == State.USER_SPEAKING
        sent = len(h.transport.sink.frames)
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        assert len(h.transport.sink.frames) > sent
        assert double.chat_count == 1
        assert double.chat_requests[0]["messages"][-1] == {
            "role": "user",
            "content": "What are your hours?",
        }
        assert [m.text for m in s.history] == ["Hi.", "What are your hours?", "We open at nine."]
        await h.finish()
    assert since(before) == (1, 0, 0)


async def test_a_caller_who_goes_on_drops_the_reply_and_its_request() -> None:
    before = counts()
    never = asyncio.Event()
    async with LlmDouble() as double, httpx.AsyncClient() as http:
        double.script(
            Reply(tokens=["Our hours,", " well"], before_done=never),
            Reply(tokens=["On Saturdays", " we open", " at ten."]),
        )
        lines = ["What are your hours?", "What are your hours on Saturday?"]
        h = Harness(lines, agent_for(double, http))
        tts = fake_tts(h)
        s = await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 0.6)
        await h.silence(0.3)  # a pause: the reply starts, held
        await until(lambda: "Our hours," in tts.texts)
        await h.say(1, 1.0)  # ... the caller goes on
        await until(double.client_gone.is_set)  # the request was cancelled
        await h.silence(0.3)
        await until(lambda: "On Saturdays we open at ten." in tts.texts)
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        agent_lines = [t.text for t in h.finals("agent")]
        assert agent_lines == ["Hi.", "On Saturdays we open at ten."]
        assert double.chat_count == 2
        assert double.chat_requests[1]["messages"] == [
            {"role": "system", "content": PROMPT},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": lines[1]},
        ]
        assert [m.text for m in s.history] == ["Hi.", lines[1], "On Saturdays we open at ten."]
        await h.finish()
    assert since(before) == (1, 1, 2)


async def test_a_held_tool_call_with_side_effects_runs_only_for_the_confirmed_turn() -> None:
    before = counts()
    async with LlmDouble() as double, httpx.AsyncClient() as http:
        double.routes["/book"] = Route(body=b"booked")
        monday, tuesday = (
            ScriptedToolCall("book", {"day": "mon"}),
            ScriptedToolCall("book", {"day": "tue"}),
        )
        double.script(
            Reply(tokens=["Booking Monday."], tool_calls=[monday]),
            Reply(tokens=["Booking Tuesday."], tool_calls=[tuesday]),
            Reply(tokens=["You're booked."]),
        )
        book = ToolSpec(name="book", kind="http", url=double.url("/book"))
        lines = ["Book Monday.", "Book Monday, no, Tuesday."]
        h = Harness(lines, agent_for(double, http, tools=[book], speculate=True))
        tts = fake_tts(h)
        await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 0.6)
        await h.silence(0.3)  # held: the words are synthesized, the tool call waits
        await until(lambda: "Booking Monday." in tts.texts)
        await h.say(1, 1.0)  # the caller goes on: the held reply and its tool call are dropped
        await h.silence(0.3)
        await until(lambda: "Booking Tuesday." in tts.texts)
        assert not [r for r in double.requests if r.path == "/book"]
        await h.until(State.AGENT_SPEAKING)  # the endpoint confirmed the turn: the tool runs
        await until(lambda: "You're booked." in tts.texts)
        await h.until(State.LISTENING)
        (booked,) = [r for r in double.requests if r.path == "/book"]
        assert booked.json() == {"day": "tue"}
        assert h.finals("agent")[-1].text == "Booking Tuesday. You're booked."
        await h.finish()
    # the dropped reply: its text, the tool call's opening and its three argument fragments
    assert since(before) == (1, 1, 5)
