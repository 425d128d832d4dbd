"""Call outcomes: rules, flow agents (from the flow), LLM agents (a JSON-schema completion from
the OpenAI-compatible double) and the fallback to rules when the model fails."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from agents.base import Message
from agents.catalog import load_specs
from agents.llm_access import LlmAccess
from agents.outcome import (
    CallFacts,
    disposition_for,
    ending_node,
    extract_outcome,
    rules_outcome,
    rules_sentiment,
)
from agents.spec import AgentSpec, LlmSettings
from tests.support.llm_double import LlmDouble, Reply

BOOKING = (
    Message(role="assistant", text="Hi, how can I help?"),
    Message(role="user", text="I'd like to book a cleaning"),
    Message(role="assistant", text="What's your name?"),
    Message(role="user", text="Maria Garcia, thanks so much"),
)


@pytest.fixture
async def double() -> AsyncIterator[LlmDouble]:
    async with LlmDouble() as server:
        yield server


TO_DOUBLE = LlmAccess(url_allowlist=("127.0.0.1",))
"""A tenant's agent whose operator allow-listed the double's loopback address."""


def llm_spec(double: LlmDouble) -> AgentSpec:
    return AgentSpec(
        name="dental",
        kind="llm",
        prompt="You are a receptionist.",
        llm=LlmSettings(base_url=double.base_url, model="test-model"),
    )


def answer(**fields: object) -> str:
    body = {
        "disposition": "completed",
        "summary": "The caller booked a cleaning.",
        "sentiment": "positive",
        "sentiment_score": 0.7,
        "slots": [{"name": "name", "value": "Maria Garcia"}],
        **fields,
    }
    return json.dumps(body)


@pytest.mark.parametrize(
    ("reason", "disposition"),
    [
        ("completed", "completed"),
        ("transferred", "transferred"),
        ("hangup", "abandoned"),
        ("no_input", "no_input"),
        ("failed", "failed"),
        ("max_duration", "failed"),
        ("interrupted", "failed"),
        ("something-new", "failed"),
    ],
)
def test_dispositions_from_the_end_reason(reason: str, disposition: str) -> None:
    assert disposition_for(reason) == disposition


def test_rules_sentiment() -> None:
    def of(*texts: str) -> str:
        return rules_sentiment([Message(role="user", text=t) for t in texts]).label

    assert of("great, thanks so much") == "positive"
    assert of("this is terrible and useless") == "negative"
    assert of("tuesday at two") == "neutral"
    assert of("that is not good") == "negative"  # negated
    agent_only = rules_sentiment([Message(role="assistant", text="great great great")])
    assert agent_only.label == "neutral" and agent_only.score == 0


def test_rules_outcome_keeps_slots_and_says_what_happened() -> None:
    facts = CallFacts(reason="hangup", duration_s=30, slots={"day": "tuesday"}, transcript=BOOKING)
    outcome = rules_outcome(facts)
    assert outcome.disposition == "abandoned" and outcome.source == "rules"
    assert outcome.slots == {"day": "tuesday"}
    assert "2 caller turn(s)" in outcome.summary and "day" in outcome.summary


async def test_flow_outcome_from_the_receptionist_flow() -> None:
    spec = load_specs(None)["receptionist"]
    assert spec.flow is not None
    slots = {"name": "Maria Garcia", "day": "tuesday", "time": "2 PM"}
    facts = CallFacts(reason="completed", duration_s=80, slots=slots, transcript=BOOKING)
    assert ending_node(spec.flow, facts) == "goodbye"
    outcome = await extract_outcome(spec, facts)
    assert outcome.source == "flow" and outcome.disposition == "completed"
    assert outcome.slots == slots and "goodbye" in outcome.summary
    assert outcome.sentiment.label == "positive"
    # hung up half way: abandoned, and what was not collected is named
    partial = CallFacts(reason="hangup", slots={"name": "Maria Garcia"}, transcript=BOOKING)
    cut = await extract_outcome(spec, partial)
    assert cut.disposition == "abandoned" and "Not collected: day, time" in cut.summary
    given = CallFacts(reason="completed", end_node="anything_else")
    assert ending_node(spec.flow, given) == "anything_else"


async def test_llm_outcome_asks_the_model_with_a_json_schema(double: LlmDouble) -> None:
    text = answer()
    double.script(Reply(tokens=[text[:20], text[20:50], text[50:]]))
    facts = CallFacts(reason="completed", duration_s=61, slots={"day": "tue"}, transcript=BOOKING)
    outcome = await extract_outcome(llm_spec(double), access=TO_DOUBLE, facts=facts, timeout_s=5)
    assert outcome.source == "model"
    assert outcome.disposition == "completed"
    assert outcome.summary == "The caller booked a cleaning."
    assert (outcome.sentiment.label, outcome.sentiment.score) == ("positive", 0.7)
    assert outcome.slots == {"name": "Maria Garcia", "day": "tue"}
    request = double.chat_requests[0]
    assert request["model"] == "test-model"
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == [
        "disposition",
        "summary",
        "sentiment",
        "sentiment_score",
        "slots",
    ]
    assert "Maria Garcia, thanks so much" in request["messages"][-1]["content"]


async def test_the_end_reason_overrides_the_model_for_hard_endings(double: LlmDouble) -> None:
    double.script(Reply(tokens=[answer(disposition="completed")]))
    facts = CallFacts(reason="transferred", transcript=BOOKING)
    outcome = await extract_outcome(llm_spec(double), access=TO_DOUBLE, facts=facts, timeout_s=5)
    assert outcome.source == "model" and outcome.disposition == "transferred"
    double.script(Reply(tokens=[answer(disposition="transferred")]))
    said = await extract_outcome(
        llm_spec(double), access=TO_DOUBLE, facts=CallFacts(reason="hangup", transcript=BOOKING)
    )
    assert said.disposition == "abandoned"  # no transfer happened


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500),
        Reply(tokens=["this is not json"]),
        Reply(tokens=[answer(sentiment="ecstatic")]),
        Reply(tokens=[answer(sentiment_score=3)]),
        Reply(tokens=['{"disposition": "completed"'], drop_after=1),
    ],
    ids=["http-500", "not-json", "bad-enum", "out-of-range", "dropped"],
)
async def test_model_failures_fall_back_to_rules(double: LlmDouble, reply: Reply) -> None:
    double.script(reply)
    facts = CallFacts(reason="completed", slots={"day": "tue"}, transcript=BOOKING)
    outcome = await extract_outcome(llm_spec(double), access=TO_DOUBLE, facts=facts, timeout_s=5)
    assert outcome.source == "rules"
    assert outcome.disposition == "completed" and outcome.slots == {"day": "tue"}
    assert len(double.chat_requests) == 1


async def test_a_model_that_does_not_answer_in_time_falls_back_to_rules(
    double: LlmDouble,
) -> None:
    never = asyncio.Event()
    double.script(Reply(tokens=[answer()], before_first=never))
    facts = CallFacts(reason="hangup", transcript=BOOKING)
    async with asyncio.timeout(5):
        outcome = await extract_outcome(
            llm_spec(double), access=TO_DOUBLE, facts=facts, timeout_s=0.3
        )
    assert outcome.source == "rules" and outcome.disposition == "abandoned"


async def test_a_refused_connection_falls_back_to_rules() -> None:
    spec = AgentSpec(
        name="dental", kind="llm", llm=LlmSettings(base_url="http://127.0.0.1:9/v1", model="m")
    )
    outcome = await extract_outcome(spec, CallFacts(reason="completed", transcript=BOOKING))
    assert outcome.source == "rules"
