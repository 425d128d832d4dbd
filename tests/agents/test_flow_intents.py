"""Intent matching on noisy transcripts, with the receptionist's intents."""

from __future__ import annotations

import pytest

from agents.catalog import embedded_specs
from agents.flow.intents import IntentMatcher
from agents.flow.spec import IntentSpec

INTENTS = ["book", "hours", "human", "goodbye", "change"]


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    flow = embedded_specs()["receptionist"].flow
    assert flow is not None
    return IntentMatcher(flow.intents, flow.match_threshold)


@pytest.mark.parametrize(
    ("said", "intent"),
    [
        ("I'd like to book a cleaning.", "book"),
        ("id like to book a cleaning", "book"),
        ("Hi, um, I was wondering if I could make an appointment", "book"),
        ("yeah hi I need to get my teeth cleaned", "book"),
        ("can I schedule a cleaning for next week", "book"),
        ("I want to book an appointment", "book"),
        ("What are your hours?", "hours"),
        ("what time do you open on saturday", "hours"),
        ("Are you open Sundays?", "hours"),
        ("when do you guys close", "hours"),
        ("What are your opening hours", "hours"),
        ("Can I talk to a human?", "human"),
        ("I want to speak to a real person", "human"),
        ("operator", "human"),
        ("Let me talk to the front desk.", "human"),
        ("can I speak with the receptionist", "human"),
        ("Can you transfer me?", "human"),
        ("Can I speak to the dentist?", "human"),
        ("I want to cancel my appointment.", "change"),
        ("I need to reschedule", "change"),
        ("could I move my appointment to friday", "change"),
        ("Goodbye.", "goodbye"),
        ("bye bye", "goodbye"),
        ("OK thanks, bye.", "goodbye"),
        ("no thanks that's all", "goodbye"),
        ("That's it, thank you.", "goodbye"),
    ],
)
def test_recognised(matcher: IntentMatcher, said: str, intent: str) -> None:
    found = matcher.best(said, INTENTS)
    assert found is not None, said
    assert found.intent == intent


@pytest.mark.parametrize(
    "said",
    ["John Smith", "Tuesday", "two pm", "the weather is nice", "hmm", "", "yes"],
)
def test_not_recognised(matcher: IntentMatcher, said: str) -> None:
    assert matcher.best(said, INTENTS) is None


def test_only_candidates_are_considered(matcher: IntentMatcher) -> None:
    assert matcher.best("what are your hours", ["book", "human"]) is None


def test_builtin_yes_no(matcher: IntentMatcher) -> None:
    assert matcher.score("yes", "Yeah, that's right.") == 1.0
    assert matcher.score("no", "Nope.") == 1.0
    assert matcher.score("yes", "nope") == 0.0
    assert matcher.score("no", "maybe") == 0.0
    # An answer that goes on still counts, less when the yes/no comes late.
    assert matcher.score("no", "no, wednesday at ten thirty") == 0.65
    assert matcher.score("yes", "I guess yes, and what about parking fees") == 0.6
    found = matcher.best("no, wednesday at ten thirty", ["goodbye", "no"])
    assert found is not None and found.intent == "no"


def test_scores_are_deterministic_and_ties_go_to_the_first() -> None:
    intents = {
        "a": IntentSpec(examples=["check my balance"]),
        "b": IntentSpec(examples=["check my balance"]),
    }
    matcher = IntentMatcher(intents, 0.6)
    first = matcher.best("check my balance", ["a", "b"])
    again = matcher.best("check my balance", ["a", "b"])
    assert first == again
    assert first is not None and first.intent == "a"
    assert first.score == 1.0


def test_partial_overlap_and_thresholds() -> None:
    intents = {
        "refund": IntentSpec(examples=["I want a refund for my order"], threshold=0.9),
        "order": IntentSpec(examples=["where is my order"]),
    }
    matcher = IntentMatcher(intents, 0.6)
    # "refund order" shares both content words of the refund example but not verbatim.
    assert matcher.score("refund", "refund order please") == pytest.approx(1.0)
    assert matcher.best("refund", ["refund"]) is None  # half the words: below 0.9
    found = matcher.best("uh where's my order at", ["refund", "order"])
    assert found is not None and found.intent == "order"
    assert matcher.threshold("refund") == 0.9
    assert matcher.threshold("order") == 0.6


def test_keywords_and_near_spellings() -> None:
    matcher = IntentMatcher({"cancel": IntentSpec(keywords=["cancel", "cancellation"])}, 0.6)
    assert matcher.score("cancel", "I need a cancelation") == 0.8
    assert matcher.score("cancel", "can you cancel it") == 0.8
    assert matcher.score("cancel", "candles") == 0.0
