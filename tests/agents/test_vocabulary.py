"""An agent's vocabulary: recogniser context, near misses snapped to the terms, spec limits."""

from __future__ import annotations

import pytest

from agents.catalog import SpecError, embedded_specs, parse_spec
from agents.flow.intents import IntentMatcher
from agents.flow.spec import IntentSpec
from agents.vocabulary import MAX_TERMS, Vocabulary, sound_key, stt_context
from agents.words.text import normalize

CLINIC = [
    "cleaning",
    "Margherita",
    "Bright Smile Dental",
    "Delta Dental",
    "Cigna",
    "Aetna",
    "Doctor Patel",
    "front desk",
    "teeth whitening",
    "Invisalign",
    "Maple Street",
]


def snap(line: str, terms: list[str] = CLINIC) -> str:
    return Vocabulary(terms).snap(normalize(line))


@pytest.mark.parametrize(
    ("heard", "snapped"),
    [
        ("Do you take metal to metal?", "do you take delta dental"),
        ("thanks for calling right smile dental", "thanks for calling bright smile dental"),
        ("can I speak to doctor petal", "can i speak to doctor patel"),
        ("do you do invisible line", "do you do invisalign"),
        # espeak-ng through G.711, as Whisper tiny.en wrote it (the understanding bench):
        # close in sound (agents.words.phonetic), far in spelling
        ("Do you take Melter Mendel?", "do you take delta dental"),
        ("I have melted mental, is that okay?", "i have delta dental is that okay"),
        ("Put me through the front neck, clean.", "put me through the front desk clean"),
    ],
)
def test_a_near_miss_snaps_to_the_term(heard: str, snapped: str) -> None:
    assert snap(heard) == snapped


@pytest.mark.parametrize(
    "line",
    [
        "can someone see me today",
        "my two thirds can someone see me today",
        "i need a dental cleaning",  # "dental" alone is not "delta dental"
        "i want teeth cleaning",
        "that is all for today",
        "do you take signal",
        "at now insurance",
        "the front door is locked",
        "no thanks goodbye",
        "i am feeling some pain",
        "i am calling about my bill",  # "calling" sounds like "cleaning", but is not spelled so
        "is there parking near the clinic",
        "do you take delta dental",  # said right: unchanged
        "can i speak to someone at the front desk",
    ],
)
def test_an_unrelated_line_is_left_alone(line: str) -> None:
    assert snap(line) == line


TERMS = ["Tony's Pizzeria", "Tony", "calzone", "Hawaiian", "garlic knots", "whitening"]


@pytest.mark.parametrize(
    "line",
    [
        "what time do you close tonight",  # "time" sounds like "Tony": one word, few sounds
        "what time will you clone tonight",  # "clone" is not "calzone"
        "when do you open for lunch",  # "when" is not "Hawaiian"
        "call me back on 212 555 0142",
        "wait one more thing",  # "wait one" is a bit like "whitening", with too few sounds
    ],
)
def test_short_sound_alikes_are_left_alone(line: str) -> None:
    assert snap(line, TERMS) == line


def test_sound_key_merges_what_telephone_speech_confuses() -> None:
    assert sound_key("metaltometal") == "n" + sound_key("deltadental")  # one sound apart
    assert sound_key("bright") == sound_key("pright")


def test_stt_context_keeps_the_first_terms_that_fit() -> None:
    assert stt_context([]) == ""
    assert stt_context(["Bright Smile Dental", "Delta Dental"]) == (
        "Bright Smile Dental, Delta Dental."
    )
    many = [f"Term number {i}" for i in range(40)]
    context = stt_context(many, max_chars=60)
    assert len(context) <= 61
    assert context.startswith("Term number 0, Term number 1,")
    assert "Term number 39" not in context


def test_the_matcher_uses_the_vocabulary() -> None:
    intents = {
        "insurance": IntentSpec(
            examples=["do you take delta dental", "do you accept my insurance"],
            keywords=["insurance", "delta dental"],
        ),
        "goodbye": IntentSpec(examples=["that is all for today", "goodbye"]),
    }
    plain = IntentMatcher(intents, 0.6)
    biased = IntentMatcher(intents, 0.6, vocabulary=["Delta Dental"])
    line = "Do you take metal to metal?"
    assert plain.best(line, list(intents)) is None or plain.score("insurance", line) < 0.8
    match = biased.best(line, list(intents))
    assert match is not None and match.intent == "insurance" and match.score >= 0.8
    assert biased.best("can someone see me today", list(intents)) is None


SPEC = """
name = "clinic"
greeting = "Hello."
vocabulary = {vocabulary}
[flow]
start = "main"
[flow.nodes.main]
prompt = "How can I help?"
"""


def test_the_receptionist_declares_its_vocabulary() -> None:
    spec = embedded_specs()["receptionist"]
    assert "Bright Smile Dental" in spec.vocabulary
    assert "Delta Dental" in spec.vocabulary
    assert stt_context(spec.vocabulary).startswith("Bright Smile Dental, Delta Dental")


def test_a_spec_vocabulary_within_limits_loads() -> None:
    spec = parse_spec(SPEC.format(vocabulary='["Delta Dental", "Dr. Patel"]'), "clinic.toml")
    assert spec.vocabulary == ["Delta Dental", "Dr. Patel"]


@pytest.mark.parametrize(
    ("vocabulary", "message"),
    [
        (str([f"term {i}" for i in range(MAX_TERMS + 1)]), "at most 50 terms (got 51)"),
        ('["one two three four five six"]', "at most 5 words and 60 characters"),
        ('["x" ]'.replace("x", "a" * 61), "at most 5 words and 60 characters"),
        ('["Delta Dental", "delta dental"]', "vocabulary[1] 'delta dental': listed twice"),
        ('["<script>"]', "letters, digits, spaces"),
        ('[""]', "not empty"),
    ],
)
def test_a_bad_vocabulary_is_refused_with_a_clear_error(vocabulary: str, message: str) -> None:
    with pytest.raises(SpecError, match="clinic.toml") as err:
        parse_spec(SPEC.format(vocabulary=vocabulary), "clinic.toml")
    assert message in str(err.value)
