"""Speculative LLM replies (`agents/speculation.py`) against a real OpenAI-compatible streaming
server (the `LlmDouble`): held replies used or dropped, tool calls with side effects kept for
the endpoint, the wasted tokens counted, and when an agent speculates by default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY

from agents.base import AgentOutput, Message, TextChunk, ToolResult, UserSaid
from agents.llm import LlmAgent
from agents.spec import ToolSpec
from agents.speculation import held
from tests.support.llm_agents import PROMPT, AgentFactory, llm_agents
from tests.support.llm_double import LlmDouble, Reply, Route, ScriptedToolCall

LIMIT_S = 10.0
"""Bound on every wait for the double or the agent (they answer in milliseconds)."""


class Release(asyncio.Event):
    """A reply's release that tells when the agent starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = asyncio.Event()

    async def wait(self) -> bool:  # type: ignore[override]
        self.awaited.set()
        return await super().wait()


@pytest.fixture
async def make_agent(double: LlmDouble) -> AsyncIterator[AgentFactory]:
    async with llm_agents(double, allowlist=("127.0.0.1",)) as make:
        yield make


def metric(outcome: str | None = None) -> float:
    if outcome is None:
        value = REGISTRY.get_sample_value("voicenode_llm_speculative_wasted_tokens_total")
    else:
        value = REGISTRY.get_sample_value("voicenode_llm_speculative_total", {"outcome": outcome})
    return value or 0.0


class Counts:
    """The speculation metrics from here on."""

    def __init__(self) -> None:
        self.start = {key: metric(key) for key in ("used", "dropped", None)}

    def used(self) -> float:
        return metric("used") - self.start["used"]

    def dropped(self) -> float:
        return metric("dropped") - self.start["dropped"]

    def wasted(self) -> float:
        return metric() - self.start[None]


class HeldReply:
    """`agent.respond` run as the session runs a preemptive reply: inside `held(release)`."""

    def __init__(self, agent: LlmAgent, text: str, history: Sequence[Message] = ()) -> None:
        self.release = Release()
        self.outputs: list[AgentOutput] = []
        self.changed = asyncio.Event()
        history = [*history, Message(role="user", text=text)]
        self.task = asyncio.create_task(self._run(agent, history, UserSaid(text)))

    async def _run(self, agent: LlmAgent, history: list[Message], event: UserSaid) -> None:
        with held(self.release):
            async for out in agent.respond(history, event):
                self.outputs.append(out)
                self.changed.set()

    async def until_outputs(self, n: int) -> None:
        async with asyncio.timeout(LIMIT_S):
            while len(self.outputs) < n:
                self.changed.clear()
                await self.changed.wait()

    async def drop(self) -> None:
        """The caller went on: the session cancels the reply."""
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    async def finished(self) -> None:
        async with asyncio.timeout(LIMIT_S):
            await self.task


def texts(outputs: Sequence[AgentOutput]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, TextChunk)]


def booking_tool(double: LlmDouble, **fields: Any) -> ToolSpec:
    return ToolSpec(
        name="book",
        kind="http",
        url=double.url("/tools/book"),
        parameters={"type": "object", "properties": {"day": {"type": "string"}}},
        **fields,
    )


def tool_requests(double: LlmDouble) -> list[str]:
    return [r.path for r in double.requests if r.path.startswith("/tools/")]


# ---- when an agent speculates ----


def test_an_agent_speculates_by_default_only_without_side_effecting_tools(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    lookup = booking_tool(double, read_only=True)
    assert make_agent().may_speculate
    assert make_agent(tools=[lookup]).may_speculate
    assert not make_agent(tools=[booking_tool(double)]).may_speculate
    for builtin in ("end_call", "transfer_call", "send_dtmf"):
        assert not make_agent(tools=[lookup, ToolSpec(name=builtin)]).may_speculate
    assert not make_agent(speculate=False).may_speculate
    assert make_agent(tools=[ToolSpec(name="end_call")], speculate=True).may_speculate


def test_a_builtin_tool_cannot_be_declared_read_only() -> None:
    with pytest.raises(msgspec.ValidationError, match="acts on the call"):
        msgspec.convert({"name": "end_call", "read_only": True}, ToolSpec)


# ---- used and dropped ----


async def test_a_reply_released_by_the_endpoint_is_used_with_its_one_request(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    counts = Counts()
    double.script(Reply(tokens=["We open", " at nine."]))
    agent = make_agent()
    reply = HeldReply(agent, "When do you open?")
    await reply.until_outputs(2)  # generated while held
    reply.release.set()  # the endpoint confirms the turn
    await reply.finished()
    assert texts(reply.outputs) == ["We open", " at nine."]
    await agent.aclose()
    assert double.chat_count == 1
    assert (counts.used(), counts.dropped(), counts.wasted()) == (1, 0, 0)


async def test_a_reply_dropped_mid_stream_cancels_the_request_and_counts_its_tokens(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    counts = Counts()
    never = asyncio.Event()
    double.script(
        Reply(tokens=["Our hours", " are", " nine"], before_done=never),
        Reply(tokens=["We open at ten on Saturdays."]),
    )
    agent = make_agent()
    history = [Message(role="assistant", text="Hello, how can I help?")]
    reply = HeldReply(agent, "What are your hours", history)
    await reply.until_outputs(3)
    await reply.drop()  # the caller went on: "...on Saturday?"
    async with asyncio.timeout(LIMIT_S):
        await double.client_gone.wait()  # the HTTP stream was closed
    assert double.finished_streams == 0
    agent.restore(None)  # as the session does after dropping the reply
    assert (counts.used(), counts.dropped(), counts.wasted()) == (0, 1, 3)

    said = "What are your hours on Saturday?"
    turn = [*history, Message(role="user", text=said)]
    outputs = [out async for out in agent.respond(turn, UserSaid(said))]
    assert texts(outputs) == ["We open at ten on Saturdays."]
    assert double.chat_requests[1]["messages"] == [
        {"role": "system", "content": PROMPT},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": said},
    ]
    assert (counts.used(), counts.dropped(), counts.wasted()) == (0, 1, 3)


async def test_a_reply_finished_before_it_is_dropped_counts_when_the_agent_is_restored(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    counts = Counts()
    double.script(Reply(tokens=["Sure", ",", " goodbye."]))
    agent = make_agent()
    reply = HeldReply(agent, "Okay bye")
    await reply.finished()  # all generated; the endpoint has not decided yet
    assert (counts.used(), counts.dropped()) == (0, 0)
    agent.restore(None)  # the session dropped it
    assert (counts.used(), counts.dropped(), counts.wasted()) == (0, 1, 3)
    await agent.aclose()  # counted once
    assert (counts.used(), counts.dropped(), counts.wasted()) == (0, 1, 3)


# ---- tools ----


def book_script(double: LlmDouble) -> None:
    double.routes["/tools/book"] = Route(body=b'{"booked": true}')
    double.script(
        Reply(
            tokens=["Let me book that."],
            tool_calls=[ScriptedToolCall("book", {"day": "monday"}, id="call_b")],
        ),
        Reply(tokens=["You're booked for Monday."]),
    )


async def held_booking(double: LlmDouble, make_agent: AgentFactory) -> tuple[LlmAgent, HeldReply]:
    """A speculating agent's held reply to `book_script`, waiting for its release at the
    side-effecting tool call."""
    book_script(double)
    agent = make_agent(tools=[booking_tool(double)], speculate=True)
    reply = HeldReply(agent, "Book me for Monday")
    async with asyncio.timeout(LIMIT_S):
        await reply.release.awaited.wait()  # the tool call waits for the release
    return agent, reply


async def test_a_side_effecting_tool_call_waits_for_the_endpoint(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    counts = Counts()
    _, reply = await held_booking(double, make_agent)
    # The words went ahead, a space after them (the sentence is whole: it is synthesized now).
    assert texts(reply.outputs) == ["Let me book that.", " "]
    assert tool_requests(double) == []
    reply.release.set()
    await reply.finished()
    assert tool_requests(double) == ["/tools/book"]
    (result,) = [o for o in reply.outputs if isinstance(o, ToolResult)]
    assert result.result == '{"booked": true}'
    assert texts(reply.outputs)[-1] == "You're booked for Monday."
    assert counts.used() == 1


async def test_a_side_effecting_tool_call_never_runs_when_the_reply_is_dropped(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    counts = Counts()
    agent, reply = await held_booking(double, make_agent)
    await reply.drop()
    agent.restore(None)
    assert tool_requests(double) == []
    assert not any(isinstance(o, ToolResult) for o in reply.outputs)
    assert double.chat_count == 1
    # the text, the tool call's opening and its three argument fragments
    assert (counts.dropped(), counts.wasted()) == (1, 5)


@pytest.mark.parametrize("builtin", ["end_call", "send_dtmf"])
async def test_a_call_action_waits_for_the_endpoint(
    builtin: str, double: LlmDouble, make_agent: AgentFactory
) -> None:
    arguments = {"digits": "1"} if builtin == "send_dtmf" else {}
    double.script(
        Reply(tokens=["One moment."], tool_calls=[ScriptedToolCall(builtin, arguments)]),
        Reply(tokens=["Done."]),
    )
    agent = make_agent(tools=[ToolSpec(name=builtin)], speculate=True)
    reply = HeldReply(agent, "Press one please")
    async with asyncio.timeout(LIMIT_S):
        await reply.release.awaited.wait()
    assert not any(isinstance(o, ToolResult) for o in reply.outputs)
    reply.release.set()
    await reply.finished()
    (result,) = [o for o in reply.outputs if isinstance(o, ToolResult)]
    assert result.name == builtin and result.ok


async def test_a_read_only_tool_runs_while_the_reply_is_held(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    counts = Counts()
    book_script(double)
    agent = make_agent(tools=[booking_tool(double, read_only=True)])
    assert agent.may_speculate
    reply = HeldReply(agent, "Is Monday free?")
    await reply.finished()  # never released
    assert not reply.release.awaited.is_set()
    assert tool_requests(double) == ["/tools/book"]
    assert texts(reply.outputs)[-1] == "You're booked for Monday."
    agent.restore(None)
    assert (counts.dropped(), counts.wasted()) == (1, 6)  # both rounds


async def test_a_reply_that_is_not_held_is_not_counted(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    counts = Counts()
    book_script(double)
    agent = make_agent(tools=[booking_tool(double)])
    history = [Message(role="user", text="Book me for Monday")]
    outputs = [out async for out in agent.respond(history, UserSaid("Book me for Monday"))]
    assert tool_requests(double) == ["/tools/book"]
    assert texts(outputs)[-1] == "You're booked for Monday."
    await agent.aclose()
    assert (counts.used(), counts.dropped(), counts.wasted()) == (0, 0, 0)
