"""An LLM agent (against the OpenAI-compatible `LlmDouble`) calling tools on a real MCP server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.base import AgentOutput, Message, TextChunk, ToolResult, UserSaid
from agents.llm import LlmAgent
from agents.mcp import DISCOVERY, FILLER_LINE
from agents.mcp_spec import McpServerSpec
from tests.support.llm_agents import AgentFactory, llm_agents
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.mcp_server import RunningMcp, serve_mcp

FALLBACK = "Sorry, one moment please."
FILLER = TextChunk(f" {FILLER_LINE} ")


@pytest.fixture
async def mcp() -> AsyncIterator[RunningMcp]:
    async with serve_mcp() as running:
        yield running


@pytest.fixture
async def make_agent(double: LlmDouble, mcp: RunningMcp) -> AsyncIterator[AgentFactory]:
    DISCOVERY.clear()
    # The allowlist (`analytics.url_allowlist`) lets the tenant's agent reach the test servers
    # on 127.0.0.1: the model double and the MCP server.
    options = {"prompt": "You are a receptionist.", "model": "m", "fallback_line": FALLBACK}
    async with llm_agents(double, allowlist=("127.0.0.1",), **options) as agent:

        def make(**server: Any) -> LlmAgent:
            server.setdefault("allowed_tools", ["next_appointment", "slow_lookup", "broken"])
            return agent(mcp=(McpServerSpec(name="crm", url=mcp.url, **server),))

        yield make
    DISCOVERY.clear()


async def collect(agent: LlmAgent, said: str) -> list[AgentOutput]:
    history = [Message(role="user", text=said)]
    return [out async for out in agent.respond(history, UserSaid(said))]


def spoken(outputs: list[AgentOutput]) -> str:
    return "".join(o.text for o in outputs if isinstance(o, TextChunk))


def answer(outputs: list[AgentOutput]) -> str:
    """What was said besides the filler, which a call that took over a second (a loaded
    machine) may bring at most once."""
    assert outputs.count(FILLER) <= 1
    return "".join(o.text for o in outputs if isinstance(o, TextChunk) and o != FILLER)


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_the_model_calls_an_mcp_tool_and_speaks_its_result(
    double: LlmDouble, mcp: RunningMcp, make_agent: AgentFactory
) -> None:
    lookup = ScriptedToolCall("crm__next_appointment", {"last_name": "Lee"}, id="call_a")
    double.script(
        Reply(tool_calls=[lookup]),
        Reply(tokens=["Your", " next", " visit", " is", " Tuesday", " at", " 10:30."]),
    )
    agent = make_agent()
    outputs = await collect(agent, "When is my next appointment? It's Lee.")
    assert answer(outputs) == "Your next visit is Tuesday at 10:30."
    results = [o for o in outputs if isinstance(o, ToolResult)]
    assert [(r.name, r.ok) for r in results] == [("crm__next_appointment", True)]
    assert mcp.backend.calls == [("next_appointment", {"last_name": "Lee", "limit": 1})]
    first, second = double.chat_requests
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert set(offered) == {"crm__next_appointment", "crm__slow_lookup", "crm__broken"}
    assert offered["crm__next_appointment"]["parameters"]["required"] == ["last_name"]
    assert tool_messages(second) == ["Lee: Tuesday 10:30 with Dr. Moss"]


async def test_a_slow_tool_gets_the_filler_then_the_result(
    double: LlmDouble, mcp: RunningMcp, make_agent: AgentFactory
) -> None:
    double.script(
        Reply(
            tokens=["Let", " me", " look."],
            tool_calls=[ScriptedToolCall("crm__slow_lookup", {"query": "x-ray"})],
        ),
        Reply(tokens=["I", " found", " it."]),
    )
    agent = make_agent()
    outputs: list[AgentOutput] = []
    history = [Message(role="user", text="Do you have my x-ray?")]
    async with contextlib.aclosing(agent.respond(history, UserSaid("x-ray?"))) as replies:
        async for out in replies:
            outputs.append(out)
            if out == FILLER:
                # Said while the tool still runs (it waits for this release).
                assert mcp.backend.slow_started.is_set()
                assert not any(isinstance(o, ToolResult) for o in outputs)
                mcp.backend.release_slow.set()
    assert outputs.count(FILLER) == 1
    filler_at = outputs.index(FILLER)
    (result,) = [o for o in outputs if isinstance(o, ToolResult)]
    assert outputs.index(result) > filler_at
    assert result.result == "found x-ray"
    assert spoken(outputs) == f"Let me look. {FILLER_LINE} I found it."
    assert tool_messages(double.chat_requests[1]) == ["found x-ray"]


async def test_a_failing_tool_reaches_the_model_as_a_failure(
    double: LlmDouble, mcp: RunningMcp, make_agent: AgentFactory
) -> None:
    double.script(
        Reply(tool_calls=[ScriptedToolCall("crm__broken", {"reason": "x"})]),
        Reply(tokens=["Sorry,", " the", " system", " is", " down."]),
    )
    outputs = await collect(make_agent(), "Book me in.")
    assert answer(outputs) == "Sorry, the system is down."
    (message,) = tool_messages(double.chat_requests[1])
    assert message.startswith("the tool failed: ")


async def test_bad_arguments_never_reach_the_server(
    double: LlmDouble, mcp: RunningMcp, make_agent: AgentFactory
) -> None:
    double.script(
        Reply(tool_calls=[ScriptedToolCall("crm__next_appointment", {"surname": "Lee"})]),
        Reply(tokens=["What", " is", " your", " last", " name?"]),
    )
    outputs = await collect(make_agent(), "When is my appointment?")
    assert answer(outputs) == "What is your last name?"
    assert tool_messages(double.chat_requests[1]) == ["error: arguments.last_name is required"]
    assert mcp.backend.calls == []


async def test_a_vanished_server_fails_the_call_and_the_conversation_goes_on(
    double: LlmDouble, mcp: RunningMcp, make_agent: AgentFactory
) -> None:
    lookup = ScriptedToolCall("crm__next_appointment", {"last_name": "Lee"})
    double.script(
        Reply(tool_calls=[lookup]),
        Reply(tokens=["Tuesday."]),
        Reply(tool_calls=[lookup]),
        Reply(tokens=["I", " can't", " check", " right", " now."]),
    )
    agent = make_agent()
    assert answer(await collect(agent, "When is my appointment?")) == "Tuesday."
    await mcp.stop()
    outputs = await collect(agent, "And the one after?")
    assert answer(outputs) == "I can't check right now."
    (result,) = [o for o in outputs if isinstance(o, ToolResult)]
    assert not result.ok
    assert tool_messages(double.chat_requests[3])[-1] == (
        "the tool failed: its server could not be reached"
    )


async def test_side_effecting_mcp_tools_turn_speculation_off(make_agent: AgentFactory) -> None:
    assert not make_agent().may_speculate
    assert make_agent(read_only_tools=["*"]).may_speculate
