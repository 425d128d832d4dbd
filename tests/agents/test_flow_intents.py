"""Intent matching on noisy transcripts, with the receptionist's intents."""

from __future__ import annotations

import pytest

from agents.catalog import embedded_specs
from agents.flow.intents import KEYWORD_SCORE, SOUND_SCORE_HIGH, SOUND_SCORE_LOW, IntentMatcher
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


# ---- heard by sound ----
# Real transcripts from `voicenode-bench understanding` (espeak-ng and Piper through G.711, as
# Whisper tiny.en wrote them; bench/reports/understanding/report.json), with what was said.

FIRST_QUESTION = ["book", "hours", "human", "goodbye", "change", "insurance"]


@pytest.fixture(scope="module")
def heard() -> IntentMatcher:
    """The receptionist's matcher as the node builds it: with its vocabulary."""
    spec = embedded_specs()["receptionist"]
    assert spec.flow is not None
    return IntentMatcher(spec.flow.intents, spec.flow.match_threshold, spec.vocabulary)


@pytest.mark.parametrize(
    ("transcript", "intent"),
    [
        ("I'd like to work at leading.", "book"),  # "I'd like to book a cleaning."
        ("So, let's find, what time can I come in for a care cup?", "book"),  # "... checkup?"
        ("Is he eating except to that bright smile, dental?", "insurance"),  # "Is Aetna accepted"
        ("Do you take Melter Mendel?", "insurance"),  # "Do you take Delta Dental?"
        ("Can I peek to someone at the front there?", "human"),  # "Can I speak to someone..."
        ("All right, I'll see you for the May, I'll call my later.", "goodbye"),  # "call back"
    ],
)
def test_a_misheard_line_matches_by_sound(
    heard: IntentMatcher, transcript: str, intent: str
) -> None:
    found = heard.best(transcript, FIRST_QUESTION)
    assert found is not None, transcript
    assert found.intent == intent


@pytest.mark.parametrize(
    "transcript",
    [
        "Is they're parking near the clinic?",
        "It is now parking near, not lit.",
        "I'm calling about my deal from last month.",
        "Dont, Doctor Patel, where come thriving?",
        "Does Docker Patel work on Fridays?",
        "My phone number in time, time, time, one, two, one, two.",
        "Do you do why turning orange with a line?",
        "Wait, one more thing.",
        "Sorry, I'm not sure yet.",
    ],
)
def test_a_line_that_asks_for_nothing_matches_nothing_by_sound(
    heard: IntentMatcher, transcript: str
) -> None:
    assert heard.best(transcript, FIRST_QUESTION) is None


def test_a_match_by_sound_is_weaker_than_words_and_never_sure_enough_to_end() -> None:
    spec = embedded_specs()["receptionist"]
    assert spec.flow is not None
    matcher = IntentMatcher(spec.flow.intents, spec.flow.match_threshold, spec.vocabulary)
    by_sound = matcher.score("goodbye", "All right, I'll see you for the May, I'll call my later.")
    assert SOUND_SCORE_LOW <= by_sound <= SOUND_SCORE_HIGH < KEYWORD_SCORE
    assert SOUND_SCORE_HIGH < spec.flow.ending.min_score
    # Words that agree still score as words: the sound match adds nothing to them.
    assert matcher.score("change", "Can I reschedule my appointment to Friday?") == pytest.approx(1)
    line = "Can I reschedule my appointment to Friday?"
    assert matcher.score("book", line, strict=True) == KEYWORD_SCORE


def test_short_examples_do_not_match_by_sound() -> None:
    matcher = IntentMatcher({"goodbye": IntentSpec(examples=["goodbye", "no thanks"])}, 0.6)
    assert matcher.score("goodbye", "good pie") == 0.0
    assert matcher.score("goodbye", "no tanks") == 0.0
    long = IntentMatcher({"book": IntentSpec(examples=["I'd like to book a cleaning"])}, 0.6)
    assert long.score("book", "I'd like to work at leading") >= SOUND_SCORE_LOW
