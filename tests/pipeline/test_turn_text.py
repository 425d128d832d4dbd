"""The transcript's rules for the end of a turn (issue 16's turn-taking set): numbers read out
in number words ("forty-seven"), numbers shorter than their kind, lines that end on a word a
line cannot end on, and lines that may be a list's first items. Each on the detector's virtual
clock (frame times) with the transcripts Whisper gave at the pauses and the audio model's
verdicts, and the lines that are whole and keep the short window."""

from __future__ import annotations

import pytest

from agents.spec import TurnSettings
from pipeline.turn import TurnDetector, TurnEnded
from pipeline.turn_text import Ending, classify_ending, is_enumeration, number_digits
from tests.pipeline.test_turn_audio_model import Frames

COMPLETE, INCOMPLETE = 0.963, 0.008  # the real model's verdicts (test_session_turn_model.py)
DAY = "Sure, I can help you book a cleaning. What day would you like to come in?"
TIME = "And what time works best for you?"
YES_NO = "So that's a cleaning for Maria on Monday at 2 PM. Is that right?"


def detector(asked: str = "", **kw: int) -> Frames:
    base = {"silence_ms": 600, "complete_silence_ms": 400, "incomplete_silence_ms": 1500}
    base.update(kw)
    det = TurnDetector(TurnSettings(**base))  # type: ignore[arg-type]
    det.agent_asked(asked)
    return Frames(det)


def pause_with(frames: Frames, transcript: str, verdict: float | None) -> None:
    """Silence until the pause; its transcript and (if given) the model's verdict come in."""
    paused = frames.pause()
    frames.det.update_transcript(transcript)
    if verdict is not None:
        assert frames.det.update_model(verdict, paused.speech_end)


def ended_in(frames: Frames, seconds: float) -> bool:
    """Whether the turn ends within `seconds` more of silence (the caller's pause)."""
    return any(isinstance(e, TurnEnded) for e in frames.feed(0.0, seconds))


def window_after(frames: Frames) -> float:
    end = frames.until_end()
    assert end is not None
    return round(end.decided_at - end.speech_end, 3)


@pytest.mark.parametrize(
    ("tokens", "digits"),
    [
        ("4111", 4),
        ("forty seven", 2),
        ("forty seven ninety two", 4),
        ("four hundred twelve", 3),
        ("nineteen eighty five", 4),
        ("double five", 2),
        ("oh nine", 2),
        ("ten", 2),
        ("555 twelve", 5),
    ],
)
def test_number_words_count_as_the_digits_they_stand_for(tokens: str, digits: int) -> None:
    assert number_digits(tokens.split()) == digits


@pytest.mark.parametrize(
    ("text", "ending"),
    [
        # espeak's "My order number is four seven," as Whisper wrote it at the pause
        ("My order number is forty-seven.", Ending.INCOMPLETE),
        ("My order number is forty seven", Ending.INCOMPLETE),
        ("My order number is forty-seven, ninety-two.", Ending.INCOMPLETE),
        ("The code is twelve.", Ending.INCOMPLETE),
        ("My account is double five.", Ending.INCOMPLETE),
        # short for their kind: a card has 15-16 digits, a phone number 10, a zip code 5
        ("The card number is 4111 1111 2222.", Ending.INCOMPLETE),
        ("The card number is 4111 1111 2222 3333.", Ending.COMPLETE),
        ("My phone number is five five five, two one two.", Ending.INCOMPLETE),
        ("My zip code is 021", Ending.INCOMPLETE),
        ("My zip code is 02139.", Ending.COMPLETE),  # (5 digits: whole, not 3-9 unfinished)
        ("My member ID is AB, 77.", Ending.INCOMPLETE),
        # whole answers with numbers in them keep the short window
        ("Two.", Ending.COMPLETE),
        ("Table for two.", Ending.COMPLETE),
        ("Ten thirty.", Ending.COMPLETE),
        ("I'm forty-seven.", Ending.COMPLETE),
        ("I was born in nineteen eighty-five.", Ending.COMPLETE),
        # lines that end on a word a line cannot end on
        ("And, uh, do you take", Ending.INCOMPLETE),
        ("And, uh, do you take?", Ending.INCOMPLETE),
        ("Do you accept", Ending.INCOMPLETE),
        ("I'd like to book it with my", Ending.INCOMPLETE),
        ("Can I speak to your", Ending.INCOMPLETE),
        ("What about?", Ending.INCOMPLETE),
        ("Which insurance do you take?", Ending.COMPLETE),  # the question put its object first
        ("Do you take Delta Dental?", Ending.COMPLETE),
        # lists of like items not yet closed by "and"/"or"
        ("I could do Monday, Wednesday.", Ending.OPEN),
        ("Nine, ten.", Ending.OPEN),
        ("What are your hours on Monday, Tuesday?", Ending.OPEN),
        ("I need a cleaning, a checkup.", Ending.OPEN),
        ("I could do Monday, Wednesday, or Friday.", Ending.COMPLETE),
        ("Do you take Delta Dental, Cigna, Aetna, or MetLife?", Ending.COMPLETE),
        ("Yes, that's right.", Ending.COMPLETE),
        ("At, uh, two PM, I think.", Ending.COMPLETE),
        ("Tuesday, 2 PM.", Ending.COMPLETE),
        ("I could do Monday.", Ending.COMPLETE),  # (alone the words cannot tell)
        ("Monday.", Ending.COMPLETE),
    ],
)
def test_classify_ending(text: str, ending: Ending) -> None:
    assert classify_ending(text) is ending


@pytest.mark.parametrize(
    ("text", "asked", "ending"),
    [
        ("I could do Monday.", DAY, Ending.OPEN),
        ("Tuesday.", DAY, Ending.OPEN),
        ("Nine.", TIME, Ending.OPEN),
        ("Either works, Monday or Tuesday.", DAY, Ending.COMPLETE),  # the list is closed
        ("Sure.", DAY, Ending.COMPLETE),  # an answer, not an item
        ("Monday.", YES_NO, Ending.COMPLETE),
        ("Yes.", YES_NO, Ending.COMPLETE),
        ("Yes.", "Sorry, was that a yes or a no?", Ending.COMPLETE),
        ("Monday.", "Is that right? Please say yes or no.", Ending.COMPLETE),
        ("Monday.", "Would you like Monday or Tuesday?", Ending.OPEN),
        ("Two.", "How many people will be coming?", Ending.COMPLETE),
        ("Garcia.", "Can I have your name, please?", Ending.COMPLETE),
        ("It's 4111 1111 1111.", "Can I have the card number, please?", Ending.INCOMPLETE),
        ("It's 4111 1111 1111.", "", Ending.COMPLETE),
        ("0 2 1 3 9.", "What's your zip code?", Ending.COMPLETE),
        ("Two.", "What's your phone number? We'll call you back.", Ending.INCOMPLETE),
    ],
)
def test_the_agent_s_question_gives_the_line_its_context(
    text: str, asked: str, ending: Ending
) -> None:
    assert classify_ending(text, asked) is ending


def test_is_enumeration_needs_items_of_one_kind() -> None:
    assert is_enumeration("Monday, Wednesday")
    assert not is_enumeration("On Monday, at two.")
    assert not is_enumeration("Okay, two.")
    assert not is_enumeration("Monday")


def test_an_order_number_in_tens_words_is_not_cut_at_its_first_group() -> None:
    """numbers.toml: "My order number is four seven, ... nine two, ... eight one." (600 ms
    pauses); Whisper wrote the first group "forty-seven." and the model said complete."""
    frames = detector()
    frames.feed(0.9, 1.6)
    pause_with(frames, "My order number is forty-seven.", COMPLETE)
    assert not ended_in(frames, 0.44)  # (the 600 ms pause, 160 ms of it spent reaching it)
    frames.feed(0.9, 0.6)
    pause_with(frames, "My order number is forty-seven, ninety-two.", COMPLETE)
    assert not ended_in(frames, 0.44)
    frames.feed(0.9, 0.6)
    pause_with(frames, "My order number is 47 92 81.", COMPLETE)
    assert window_after(frames) == 1.5  # (6 digits: the line's end waits the long window)


def test_a_line_that_ends_on_take_waits_for_its_object() -> None:
    """hesitation.toml: "And, uh, do you take ... Delta Dental?" (600 ms pause)."""
    frames = detector()
    frames.feed(0.9, 1.2)
    pause_with(frames, "And, uh, do you take?", COMPLETE)
    assert not ended_in(frames, 0.44)
    frames.feed(0.9, 0.7)
    pause_with(frames, "And, uh, do you take Delta Dental?", COMPLETE)
    assert window_after(frames) == 0.2  # whole: the model's quick "complete"


def test_a_list_after_a_choice_question_waits_the_list_window() -> None:
    """lists.toml: "I could do Monday, ... Wednesday, ... or Friday." (500 ms pauses) after
    "What day would you like to come in?": at the first pause Whisper wrote "I could do
    Monday." and the model said complete; the 400 ms (or 200 ms) window ended the turn."""
    frames = detector(DAY)
    frames.feed(0.9, 1.0)
    pause_with(frames, "I could do Monday.", COMPLETE)
    assert not ended_in(frames, 0.34)  # (the 500 ms pause)
    frames.feed(0.9, 0.6)
    pause_with(frames, "I could do Monday, Wednesday.", COMPLETE)
    assert not ended_in(frames, 0.34)
    frames.feed(0.9, 0.6)
    pause_with(frames, "I could do Monday, Wednesday, or Friday.", COMPLETE)
    assert window_after(frames) == 0.2  # the list closed: whole


def test_a_line_that_may_be_a_list_ends_at_the_list_window_if_the_caller_stops() -> None:
    frames = detector(DAY)
    frames.feed(0.9, 0.6)
    pause_with(frames, "Tuesday.", COMPLETE)
    assert window_after(frames) == 1.0  # (list_silence_ms)
    frames = detector(DAY)
    frames.feed(0.9, 0.6)
    pause_with(frames, "Tuesday.", INCOMPLETE)  # (nor does the model's "incomplete" hold it)
    assert window_after(frames) == 1.0


def test_the_list_window_is_the_agent_s_and_never_under_its_neutral_window() -> None:
    frames = detector(DAY, list_silence_ms=750)
    frames.feed(0.9, 0.6)
    pause_with(frames, "Tuesday.", COMPLETE)
    assert window_after(frames) == 0.76  # 750 ms, at the next frame boundary
    frames = detector(DAY, silence_ms=1200, list_silence_ms=800)
    frames.feed(0.9, 0.6)
    pause_with(frames, "Tuesday.", COMPLETE)
    assert window_after(frames) == 1.2


@pytest.mark.parametrize(
    ("asked", "line"),
    [
        (YES_NO, "Monday."),
        (YES_NO, "Yes."),
        ("How many people will be coming?", "Two."),
        ("", "Monday."),
    ],
)
def test_whole_answers_keep_the_short_window(asked: str, line: str) -> None:
    frames = detector(asked)
    frames.feed(0.9, 0.5)
    pause_with(frames, line, None)
    assert window_after(frames) == 0.4
    frames = detector(asked)
    frames.feed(0.9, 0.5)
    pause_with(frames, line, COMPLETE)
    assert window_after(frames) == 0.2
