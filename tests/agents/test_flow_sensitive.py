"""Sensitive flow slots and the flow's `recording` action: the agent says when its input is
sensitive, a sensitive value is never read out whole nor sent masked-less to the call record,
and `{ recording = "pause" | "resume" }` becomes a `RecordingControl` in the reply, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from agents.base import (
    AgentContext,
    AgentOutput,
    CallStarted,
    DtmfPressed,
    EndCall,
    RecordingControl,
    TextChunk,
    ToolResult,
    UserSaid,
)
from agents.catalog import SpecError, parse_spec
from agents.flow import FlowAgent
from agents.sensitive import REDACTED, masked
from agents.spec import AgentSpec

CARD = "4111111111111111"
PAYMENT = """
name = "payments"
kind = "flow"
greeting = "Payments."

[flow]
start = "pay"

[flow.slots.card]
type = "digits"
prompt = "Please key in your card number."
min_digits = 13
max_digits = 19
sensitive = true

[flow.slots.pin]
type = "digits"
prompt = "And your PIN?"
min_digits = 4
max_digits = 4
sensitive = true
readback = ""

[flow.webhooks.charge]
url = "https://pay.example/charge"

[flow.nodes.pay]
do = [
  { ask = "card" },
  { ask = "pin" },
  { webhook = "charge" },
  { say = "Thank you, the card ending in {card} is charged." },
  { end = true },
]
"""
PAUSING = """
name = "pausing"
kind = "flow"
greeting = "Hello."

[flow]
start = "main"

[flow.slots.account]
type = "digits"
prompt = "Your account number?"
readback = ""

[flow.nodes.main]
do = [
  { say = "I will now stop recording." },
  { recording = "pause" },
  { ask = "account" },
  { recording = "resume" },
  { say = "Recording again." },
  { end = true },
]
"""


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    def charge(request: httpx.Request) -> httpx.Response:
        body = msgspec.json.decode(request.content)
        # the tenant's own webhook gets the values: it is where they are meant to go
        assert body["slots"] == {"card": CARD, "pin": "1234"}
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(charge)) as client:
        yield client


def agent(text: str, http: httpx.AsyncClient) -> FlowAgent:
    spec: AgentSpec = parse_spec(text, "test.toml")
    ctx = AgentContext(
        call_id="call-1", tenant_id="demo", http=http, url_allowlist=("pay.example",)
    )
    return FlowAgent(spec, ctx)


async def reply(flow: FlowAgent, event: object) -> list[AgentOutput]:
    return [out async for out in flow.respond([], event)]  # type: ignore[arg-type]


def said(outs: list[AgentOutput]) -> str:
    return "".join(o.text for o in outs if isinstance(o, TextChunk))


async def test_a_sensitive_slot_is_sensitive_input_while_asked(http: httpx.AsyncClient) -> None:
    flow = agent(PAYMENT, http)
    assert not flow.sensitive_input
    assert said(await reply(flow, CallStarted())).endswith("Please key in your card number.")
    assert flow.sensitive_input
    # keyed: no readback of a number keyed in; the next sensitive slot is asked
    assert said(await reply(flow, DtmfPressed(CARD))) == "And your PIN?"
    assert flow.sensitive_input
    outs = await reply(flow, DtmfPressed("1234"))
    assert not flow.sensitive_input
    # `{card}` reads only the last four digits
    assert said(outs) == "Thank you, the card ending in 1 1 1 1 is charged."
    (tool,) = [o for o in outs if isinstance(o, ToolResult)]
    assert tool.ok and tool.arguments["slots"] == {"card": "[CARD]", "pin": REDACTED}
    assert isinstance(outs[-1], EndCall)
    assert flow.slots == {"card": "[CARD]", "pin": REDACTED}  # the call record's view


async def test_a_sensitive_number_said_is_read_back_by_its_last_digits(
    http: httpx.AsyncClient,
) -> None:
    flow = agent(PAYMENT, http)
    await reply(flow, CallStarted())
    line = said(await reply(flow, UserSaid("4111 1111 1111 1111")))
    assert line == "That's the number ending in 1 1 1 1. Is that right?"
    assert flow.sensitive_input  # still the card's step while it is read back
    assert said(await reply(flow, UserSaid("yes"))) == "And your PIN?"


async def test_the_recording_action_is_a_recording_control_in_order(
    http: httpx.AsyncClient,
) -> None:
    flow = agent(PAUSING, http)
    outs = await reply(flow, CallStarted())
    assert [type(o).__name__ for o in outs] == [
        "TextChunk",
        "TextChunk",
        "RecordingControl",
        "TextChunk",
    ]
    assert outs[2] == RecordingControl(pause=True, reason="agent")
    assert not flow.sensitive_input  # not a sensitive slot: the flow paused on its own
    outs = await reply(flow, DtmfPressed("12345"))
    assert outs[0] == RecordingControl(pause=False, reason="agent")
    assert said(outs) == "Recording again."


def test_the_recording_action_takes_pause_or_resume_only() -> None:
    bad = PAUSING.replace('{ recording = "pause" }', '{ recording = "stop" }')
    with pytest.raises(SpecError, match="recording"):
        parse_spec(bad, "test.toml")
    both = PAUSING.replace('{ recording = "pause" }', '{ recording = "pause", say = "x" }')
    with pytest.raises(SpecError, match="exactly one of"):
        parse_spec(both, "test.toml")


def test_masked_values_keep_no_digit() -> None:
    assert masked(CARD) == "[CARD]"
    assert masked("4111 1111 1111 1111") == "[CARD]"
    assert masked("1234") == REDACTED
    assert masked("4111111111111112") == REDACTED  # not Luhn-valid: no detector names it
    assert masked("") == ""
