"""The first clause of a reply is short: a long first sentence without a comma is cut before a
conjunction or preposition (or at its word limit), so the caller hears the reply begin while
the rest is synthesized; later clauses are not cut that way."""

from __future__ import annotations

from pipeline.tts import ClauseSplitter


def split(text: str, *, by: str = "word", **kw: int) -> list[str]:
    """`text` streamed a word at a time (or a character at a time: `by="char"`)."""
    s = ClauseSplitter(**kw)
    chunks = [w + " " for w in text.split()] if by == "word" else list(text + " ")
    out: list[str] = []
    for c in chunks:
        out += s.push(c)
    return out + s.flush()


LONG = "I can book you in for a cleaning with Doctor Patel next Tuesday at two. Does that work?"


def test_a_long_first_sentence_is_cut_before_a_soft_break() -> None:
    assert split(LONG) == [
        "I can book you in for a cleaning",
        "with Doctor Patel next Tuesday at two.",
        "Does that work?",
    ]


def test_streaming_character_by_character_cuts_the_same_place() -> None:
    assert split(LONG, by="char") == split(LONG)


def test_without_a_soft_break_the_cut_is_at_the_word_limit() -> None:
    text = "Maria Garcia Tuesday Thursday Friday Monday Wednesday Saturday Sunday noon."
    assert split(text) == [
        "Maria Garcia Tuesday Thursday Friday Monday Wednesday Saturday",
        "Sunday noon.",
    ]


def test_short_first_sentences_and_commas_are_left_alone() -> None:
    assert split("What day would you like to come in? Any day works.") == [
        "What day would you like to come in?",
        "Any day works.",
    ]
    assert split("Sure thing, I can help with that and then we will pick a day for you.") == [
        "Sure thing,",
        "I can help with that and then we will pick a day for you.",
    ]


def test_a_soft_break_too_early_is_not_used() -> None:
    # "to" is the third word: a clause of two words would be too short; cut at the limit
    text = "I want to reschedule the appointment my daughter has next week please."
    assert split(text, first_clause_max_words=6) == [
        "I want to reschedule the appointment",
        "my daughter has next week please.",
    ]
