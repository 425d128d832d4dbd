"""The LLM agent's model sees the caller with personal data redacted by the tenant's policy
(`AgentContext.pii`): the caller's lines in the history, the line just said and keys pressed
carry placeholders in the request the model gets (the `LlmDouble`, real HTTP); its own lines
are as it said them; with no kinds nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents.base import DtmfPressed, Message, TextChunk, UserSaid
from agents.llm import LlmAgent
from agents.pii import ALL_KINDS
from tests.support.llm_agents import AgentFactory, llm_agents
from tests.support.llm_double import LlmDouble, Reply

LINE = "My card is 4111 1111 1111 1111 and my email is john at example dot com"
REDACTED = "My card is [CARD] and my email is [EMAIL]"


@pytest.fixture
async def make_agent(double: LlmDouble) -> AsyncIterator[AgentFactory]:
    async with llm_agents(double) as make:
        yield make


async def reply(agent: LlmAgent, history: list[Message], said: UserSaid | DtmfPressed) -> str:
    """What the agent said back (the double's scripted reply)."""
    outputs = [out async for out in agent.respond(history, said)]
    return "".join(out.text for out in outputs if isinstance(out, TextChunk))


async def test_the_model_gets_placeholders_for_the_callers_personal_data(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Thanks."]), Reply(tokens=["Got it."]))
    agent = make_agent(pii=ALL_KINDS)
    history = [
        Message(role="assistant", text="How can I help?"),
        Message(role="user", text="call me on (415) 555-2671"),
        Message(role="assistant", text="Sure. Anything else?"),
        Message(role="user", text=LINE),
    ]
    assert await reply(agent, history, UserSaid(LINE)) == "Thanks."
    assert await reply(agent, history[:3], DtmfPressed("4111111111111111")) == "Got it."
    first, second = double.chat_requests
    assert first["messages"][1:] == [
        {"role": "assistant", "content": "How can I help?"},
        {"role": "user", "content": "call me on [PHONE]"},
        {"role": "assistant", "content": "Sure. Anything else?"},
        {"role": "user", "content": REDACTED},
    ]
    assert second["messages"][-1] == {"role": "user", "content": "[caller pressed keys: [CARD]]"}
    for request in double.requests:
        assert b"4111" not in request.body and b"example dot com" not in request.body


async def test_the_line_just_said_is_redacted_when_the_history_lacks_it(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Thanks."]))
    agent = make_agent(pii=frozenset({"email"}))
    await reply(agent, [], UserSaid(LINE))
    assert double.chat_requests[0]["messages"][-1] == {
        "role": "user",
        "content": "My card is 4111 1111 1111 1111 and my email is [EMAIL]",
    }


async def test_without_kinds_the_model_gets_the_line_as_said(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Thanks."]))
    agent = make_agent()
    await reply(agent, [Message(role="user", text=LINE)], UserSaid(LINE))
    assert double.chat_requests[0]["messages"][-1] == {"role": "user", "content": LINE}
