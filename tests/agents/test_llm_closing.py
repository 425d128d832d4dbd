"""The system prompt the node adds for an LLM agent that can end or transfer calls: confirm
before ending when the caller's intent is unclear (issue 22). The request goes over real HTTP
to the OpenAI-compatible double."""

from __future__ import annotations

from agents.base import UserSaid
from agents.llm import CLOSING_NOTE
from tests.agents.test_llm import builtin, collect, make_agent
from tests.support.llm_agents import PROMPT, AgentFactory
from tests.support.llm_double import LlmDouble, Reply

__all__ = ["make_agent"]  # the fixture


async def test_an_agent_that_can_hang_up_is_told_to_confirm_first(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Sure", "."]))
    agent = make_agent(tools=builtin("end_call"))
    await collect(agent, UserSaid("My two thirds, can someone see me today?"))
    system = double.chat_requests[0]["messages"][0]
    assert system["role"] == "system"
    assert system["content"] == f"{PROMPT}\n\n{CLOSING_NOTE}"
    assert "Did you want to end the call?" in CLOSING_NOTE


async def test_transfer_alone_gets_the_note_too(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Ok", "."]))
    agent = make_agent(tools=builtin("transfer_call"))
    await collect(agent, UserSaid("hi"))
    assert double.chat_requests[0]["messages"][0]["content"].endswith(CLOSING_NOTE)


async def test_an_agent_that_cannot_end_calls_gets_the_prompt_unchanged(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Ok", "."]))
    agent = make_agent(tools=builtin("send_dtmf"))
    await collect(agent, UserSaid("hi"))
    assert double.chat_requests[0]["messages"][0] == {"role": "system", "content": PROMPT}
