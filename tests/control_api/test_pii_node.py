"""The tenant's PII redaction policy on the real node (store, analytics, HTTP API, `LiveCalls`,
`CallSession`; fake speech engines on the real clock; an LLM agent against the `LlmDouble`):
the caller reads a card number and an email, and the model (its turn and the outcome after the
call) and the history API get placeholders; after the platform admin narrows the policy to
emails, the next call's card number is left as said. The node's logs carry neither."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.outcome import OUTCOME_PROMPT
from control_api.store import agents as agent_rows
from tests.support.analytics import wait_for
from tests.support.harness import auth, serve_app
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.served_node import call_and_speak, light_node, light_node_settings
from voicenode.logs import JsonFormatter
from voicenode.node import Node

CARD = "4111 1111 1111 1111"
LINE = f"My card is {CARD} and my email is john at example dot com"


def agent_toml(double: LlmDouble) -> str:
    return (
        'name = "payments"\nkind = "llm"\nprompt = "You are payments."\n'
        'greeting = "Hello there."\ntools = [{name = "end_call"}]\n'
        f'[llm]\nbase_url = "{double.base_url}"\nmodel = "m"\nspeculate = false\n'
    )


@asynccontextmanager
async def served(data_dir: Path) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    settings = light_node_settings(data_dir)
    async with (
        light_node(settings, [LINE]) as node,
        serve_app(node, settings) as url,
        httpx.AsyncClient(base_url=url, timeout=20) as http,
    ):
        yield node, http


async def last_call(http: httpx.AsyncClient, count: int) -> dict[str, Any]:
    """The newest of the agent's `count` calls as the history API shows it, once its record
    is complete."""
    record: dict[str, Any] = {}

    async def ended() -> bool:
        page = await http.get("/v1/calls", params={"agent": "payments"}, headers=auth())
        calls = page.json()["calls"] if page.status_code == 200 else []
        if len(calls) < count or calls[0]["status"] != "ended":
            return False
        detail = await http.get(f"/v1/calls/{calls[0]['id']}", headers=auth())
        record.update(detail.json())
        return any(line["role"] == "user" for line in record.get("transcript", []))

    await wait_for(ended, timeout_s=30, what="the call's record")
    return record


def asked_outcome(request: dict[str, Any]) -> bool:
    return bool(request["messages"][0]["content"] == OUTCOME_PROMPT)


async def speak(node: Node, double: LlmDouble) -> list[dict[str, Any]]:
    """One call: the caller says LINE, the model ends the call; the model's requests for it
    (its turn, then the outcome after the call)."""
    before = len(double.chat_requests)
    double.script(Reply(tokens=["Thank you."], tool_calls=[ScriptedToolCall("end_call")]))
    await call_and_speak(node, "demo", "payments")

    async def outcome_asked() -> bool:
        return any(asked_outcome(r) for r in double.chat_requests[before:])

    await wait_for(outcome_asked, timeout_s=30, what="the outcome model's request")
    return double.chat_requests[before:]


def user_lines(requests: list[dict[str, Any]]) -> list[str]:
    """What the caller said, as the agent's model got it in its turn."""
    (turn,) = [r for r in requests if not asked_outcome(r)]
    return [m["content"] for m in turn["messages"] if m["role"] == "user"]


async def test_the_model_and_the_history_get_placeholders_by_the_tenants_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the node's default `node.log_level`
    async with LlmDouble() as double, served(tmp_path) as (node, http):
        async with node.store.session() as session:
            await agent_rows.create_agent(session, "demo", "payments", agent_toml(double))

        # the default policy: every kind
        requests = await speak(node, double)
        assert user_lines(requests) == ["My card is [CARD] and my email is [EMAIL]"]
        assert "4111" not in str(requests) and "example dot com" not in str(requests)
        record = await last_call(http, 1)
        (user,) = [line for line in record["transcript"] if line["role"] == "user"]
        assert (user["text"], user["redacted"]) == (
            "My card is [CARD] and my email is [EMAIL]",
            ["card", "email"],
        )

        # the platform admin narrows it to emails: the next call's card is left as said
        put = await http.put(
            "/v1/tenants/demo/pii-redaction", json={"kinds": ["email"]}, headers=auth()
        )
        assert put.status_code == 200, put.text
        requests = await speak(node, double)
        assert user_lines(requests) == [f"My card is {CARD} and my email is [EMAIL]"]
        record = await last_call(http, 2)
        (user,) = [line for line in record["transcript"] if line["role"] == "user"]
        assert (user["text"], user["redacted"]) == (
            f"My card is {CARD} and my email is [EMAIL]",
            ["email"],
        )
    # the node's log lines (as its JSON formatter writes them) never carry what was said, not
    # even the card the narrowed policy left in the second call's records
    formatter = JsonFormatter(redact_pii=True)
    written = "\n".join(formatter.format(record) for record in caplog.records)
    assert caplog.records and "4111" not in written and "example dot com" not in written
