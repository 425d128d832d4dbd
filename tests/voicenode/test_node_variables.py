"""A campaign contact's variables reach its call's agent on the real node (store, `LiveCalls`,
`CallSession`; fake speech engines on the real clock; an LLM agent against the `LlmDouble`):
`Node.call_variables` for the call fills `$name` and `${name}` in the greeting the caller
hears and in the system prompt the model gets; a placeholder the contact has no value for is
left as written; a call without variables gets the agent's texts unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from control_api.store import agents as agent_rows
from media.call import CallInfo
from pipeline.events import CallEvent, Transcript
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.served_node import call_and_speak, light_node, light_node_settings

LINE = "Yes I can make it"
VARIABLES = {"name": "Ann Lee", "appointment_time": "Tuesday at 3 PM"}


class ForEveryCall(dict[str, Mapping[str, str]]):
    """`Node.call_variables` giving these variables to every call (the test's calls get their
    ids inside `call_and_speak`; the dialler sets them per call id)."""

    def get(self, key: str, default: object = None) -> Mapping[str, str]:
        return VARIABLES


def agent_toml(double: LlmDouble) -> str:
    return (
        'name = "reminder"\nkind = "llm"\n'
        'prompt = "You remind $name of the visit on ${appointment_time}."\n'
        'greeting = "Hello $name, this is about $unknown."\n'
        'tools = [{name = "end_call"}]\n'
        f'[llm]\nbase_url = "{double.base_url}"\nmodel = "m"\nspeculate = false\n'
    )


async def test_a_calls_variables_fill_its_agents_greeting_and_prompt(tmp_path: Path) -> None:
    settings = light_node_settings(tmp_path)
    said: list[str] = []

    def listen(_info: CallInfo, event: CallEvent) -> None:
        if isinstance(event, Transcript) and event.final and event.role == "agent":
            said.append(event.text)

    async with LlmDouble() as double, light_node(settings, [LINE, LINE]) as node:
        async with node.store.session() as session:
            await agent_rows.create_agent(session, "demo", "reminder", agent_toml(double))
        node.calls.subscribe(listen)
        node.call_variables = ForEveryCall()
        double.script(Reply(tokens=["See you then."], tool_calls=[ScriptedToolCall("end_call")]))
        await call_and_speak(node, "demo", "reminder")
        node.call_variables = {}
        double.script(Reply(tokens=["See you then."], tool_calls=[ScriptedToolCall("end_call")]))
        await call_and_speak(node, "demo", "reminder")
    prompts = [
        r["messages"][0]["content"]
        for r in double.chat_requests
        if r["messages"][0]["role"] == "system" and "You remind" in r["messages"][0]["content"]
    ]  # the agent's requests, and the outcome model's that carry its prompt
    filled = "You remind Ann Lee of the visit on Tuesday at 3 PM."
    as_written = "You remind $name of the visit on ${appointment_time}."
    assert filled in prompts[0]  # the first call's first request
    assert any(as_written in p for p in prompts)  # the second call's
    assert all((filled in p) != (as_written in p) for p in prompts)
    assert said[0] == "Hello Ann Lee, this is about $unknown."
    assert "Hello $name, this is about $unknown." in said[1:]
