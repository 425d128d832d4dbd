"""Digits slots: a number heard in any form is a digit string, read back in groups before the
flow acts on it."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import httpx
import pytest

from agents.base import (
    AgentContext,
    CallStarted,
    DtmfPressed,
    Message,
    NoInput,
    TextChunk,
    UserSaid,
)
from agents.catalog import SpecError, parse_spec
from agents.flow import FlowAgent
from agents.spec import AgentSpec

SPEC = """
name = "callback"
greeting = "Hello."
[flow]
start = "main"
[flow.intents.callback]
examples = ["call me back", "can you call me back"]
[flow.slots.phone]
type = "digits"
prompt = "What number should we call?"
min_digits = 7
max_digits = 11
{extra}
[flow.nodes.main]
prompt = "How can I help?"
routes = [{{ intent = "callback", goto = "callback" }}]
[flow.nodes.callback]
do = [{{ ask = "phone" }}, {{ say = "We'll call you on {{phone}}." }}, {{ goto = "main" }}]
"""


def spec(extra: str = "") -> AgentSpec:
    return parse_spec(SPEC.format(extra=extra), "callback.toml")


@pytest.fixture
async def agent() -> AsyncIterator[FlowAgent]:
    async with httpx.AsyncClient() as http:
        ctx = AgentContext(call_id="c1", tenant_id="t", http=http)
        yield FlowAgent(spec(), ctx, today=lambda: datetime.date(2026, 5, 11))


async def turn(agent: FlowAgent, event: UserSaid | DtmfPressed | NoInput) -> str:
    history = [Message(role="user", text=event.text)] if isinstance(event, UserSaid) else []
    return "".join(
        [o.text async for o in agent.respond(history, event) if isinstance(o, TextChunk)]
    )


async def asked_for_number(agent: FlowAgent) -> None:
    assert [o async for o in agent.respond([], CallStarted())]
    assert await turn(agent, UserSaid("can you call me back")) == "What number should we call?"


async def test_the_number_is_read_back_in_groups_and_yes_goes_on(agent: FlowAgent) -> None:
    await asked_for_number(agent)
    said = await turn(agent, UserSaid("It's five five five, twelve twelve."))
    assert said == "That's 5 5 5, 1 2 1 2. Is that right?"
    assert agent.waiting_for == "phone"
    said = await turn(agent, UserSaid("yes"))
    assert said.startswith("We'll call you on 5 5 5, 1 2 1 2.")
    assert agent.slots == {"phone": "5551212"}  # a digit string for webhooks
    assert agent.node == "main"


async def test_no_asks_for_the_number_again(agent: FlowAgent) -> None:
    await asked_for_number(agent)
    await turn(agent, UserSaid("5 5 5 1212"))
    said = await turn(agent, UserSaid("no"))
    assert said == "Okay, let's try that again. What number should we call?"
    assert "phone" not in agent.slots
    assert await turn(agent, UserSaid("555-1213")) == "That's 5 5 5, 1 2 1 3. Is that right?"


async def test_a_corrected_number_is_read_back_in_turn(agent: FlowAgent) -> None:
    await asked_for_number(agent)
    await turn(agent, UserSaid("five five five one two one two"))
    said = await turn(agent, UserSaid("no, five five five one two one three"))
    assert said == "That's 5 5 5, 1 2 1 3. Is that right?"
    said = await turn(agent, UserSaid("that's right"))
    assert said.startswith("We'll call you on 5 5 5, 1 2 1 3.")


async def test_an_unclear_answer_or_silence_repeats_the_readback(agent: FlowAgent) -> None:
    await asked_for_number(agent)
    await turn(agent, UserSaid("five five five one two one two"))
    said = await turn(agent, UserSaid("what"))
    assert said == "Sorry, I didn't catch that. That's 5 5 5, 1 2 1 2. Is that right?"
    assert await turn(agent, NoInput(1)) == "That's 5 5 5, 1 2 1 2. Is that right?"
    assert (await turn(agent, DtmfPressed("1"))).startswith("We'll call you on")


async def test_too_few_digits_is_not_a_number(agent: FlowAgent) -> None:
    await asked_for_number(agent)
    said = await turn(agent, UserSaid("five five five"))
    assert said == "Sorry, I didn't catch that. What number should we call?"


async def test_keyed_digits_need_no_readback(agent: FlowAgent) -> None:
    await asked_for_number(agent)
    said = await turn(agent, DtmfPressed("5551212#"))
    assert said.startswith("We'll call you on 5 5 5, 1 2 1 2.")


async def test_a_readback_can_be_worded_or_turned_off() -> None:
    async with httpx.AsyncClient() as http:
        ctx = AgentContext(call_id="c1", tenant_id="t", http=http)
        for extra, expected in (
            ('readback = "I have {phone}, correct?"', "I have 5 5 5, 1 2 1 2, correct?"),
            ('readback = ""', "We'll call you on 5 5 5, 1 2 1 2."),
        ):
            agent = FlowAgent(spec(extra), ctx)
            await asked_for_number(agent)
            said = await turn(agent, UserSaid("five five five one two one two"))
            assert said.startswith(expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("min_digits = 7", "min_digits = 12"), "phone.min_digits: is greater than `max_digits`"),
        (("{extra}", 'readback = "Is {{fone}} right?"'), "phone.readback: unknown slot {fone}"),
    ],
)
def test_bad_digits_slots_are_refused(change: tuple[str, str], message: str) -> None:
    text = SPEC.replace(*change).format(extra="")
    with pytest.raises(SpecError, match="callback.toml") as err:
        parse_spec(text, "callback.toml")
    assert message in str(err.value)


def test_digit_fields_on_other_slots_are_refused() -> None:
    text = SPEC.format(extra="").replace('type = "digits"', 'type = "free_text"')
    with pytest.raises(SpecError, match="apply to digits slots only"):
        parse_spec(text, "callback.toml")
