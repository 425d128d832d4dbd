"""Lists the list window did not cover at 1a814e2 (issue 16; traced in the held-out run of
held_out_lists.toml): choices each joined by "or" ("Maybe three, ... or four, ... or five
PM."), and the first thing named after an open question ("I want a checkup, ... an X-ray,
..."). Replayed on the detector's frame clock with the transcripts Whisper gave and the audio
model's verdicts, with the lines whose window must not change."""

from __future__ import annotations

import pytest

from pipeline.turn_text import Ending, classify_ending, is_or_chain, names_one_thing
from tests.pipeline.test_turn_text import (
    DAY,
    TIME,
    YES_NO,
    detector,
    ended_in,
    pause_with,
    window_after,
)

PAUSED_AFTER_S = 0.16
"""Silence the detector needs to report a pause (`Frames.pause` waits it out first)."""
HELP = "Thanks for calling Bright Smile Dental. How can I help you today?"
ANYTHING_ELSE = "You're all set. Is there anything else I can help you with?"
NAME = "Sure, I can help you book a cleaning. Can I have your name, please?"


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("Maybe 3 or 4.", DAY),  # (espeak-ng's second pause, traced)
        ("Maybe 3 or 4.", TIME),
        ("Maybe 3, or 4, or 5 PM.", TIME),
        ("Maybe 3 or 4 or 5 p.m.", TIME),
        ("Monday, or Wednesday.", DAY),
        ("Tuesday or maybe Thursday.", DAY),
        ("Ten or eleven.", "Which works better, ten or eleven?"),
    ],
)
def test_choices_each_joined_by_or_may_go_on(text: str, asked: str) -> None:
    assert is_or_chain(text)
    assert classify_ending(text, asked) is Ending.OPEN


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("I could do Monday, Wednesday, or Friday.", DAY),  # "or" closes the list
        ("Nine, ten, or eleven in the morning.", TIME),
        ("Either works, Monday or Tuesday.", DAY),
        ("Monday and Tuesday, or Friday.", DAY),
        ("Monday or 2 PM.", DAY),  # (a day, then a time: no list of like items)
        ("Nine or ten in the morning.", TIME),  # (its last item runs on: whole)
        ("Maybe 3 or 4.", NAME),  # no choice asked: "or" joins a whole answer
        ("Maybe 3 or 4.", ""),
        ("Two or three.", "How many people will be coming?"),
        ("Yes or no.", YES_NO),
    ],
)
def test_an_or_that_closes_a_list_or_answers_no_choice_keeps_its_window(
    text: str, asked: str
) -> None:
    assert classify_ending(text, asked) is Ending.COMPLETE


def test_an_or_list_of_times_waits_through_its_pauses() -> None:
    """espeak-ng, held_out_lists.toml: "Maybe three, ... or four, ... or five PM." after "What
    day would you like to come in?" (500 ms pauses). At the first pause "Maybe free," (0.962)
    waited; at the second the partial "Maybe 3 or 4." came before the pause, the model's 0.911
    only 400 ms into it, and the short window (400 ms) ended the turn; the caller went on 664
    ms after the speech's end."""
    frames = detector(DAY)
    frames.feed(0.9, 0.8)
    pause_with(frames, "Maybe free,", 0.962)
    assert not ended_in(frames, 0.645 - PAUSED_AFTER_S)
    frames.feed(0.9, 0.6)
    frames.det.update_transcript("Maybe 3 or 4.")  # a partial, before the pause
    paused = frames.pause()
    assert not ended_in(frames, 0.4 - PAUSED_AFTER_S)
    assert frames.det.update_model(0.911, paused.speech_end)
    assert not ended_in(frames, 0.664 - 0.4)
    frames.feed(0.9, 0.8)
    frames.det.update_transcript("Maybe 3 or 4 or 5 p.m.")
    paused = frames.pause()
    assert frames.det.update_model(0.031, paused.speech_end)
    assert window_after(frames) == 1.0  # the price: the line's end waits the list window


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("I wanna check.", HELP),  # (Piper's "I want a checkup," as Whisper wrote it)
        ("I want the check.", HELP),  # (espeak-ng's)
        ("I need a filling.", HELP),
        ("A checkup.", HELP),
        ("Could I get an X-ray?", HELP),
        ("I need a new crown.", ANYTHING_ELSE),
    ],
)
def test_one_thing_named_after_an_open_question_may_start_a_list(text: str, asked: str) -> None:
    assert names_one_thing(text.lower().rstrip(".?").replace("-", " ").split())
    assert classify_ending(text, asked) is Ending.OPEN


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("I'd like to book a cleaning.", HELP),  # an action done to the thing
        ("A cleaning, please.", HELP),  # closed by "please"
        ("What are your opening hours?", HELP),
        ("Do you take Humana?", ANYTHING_ELSE),  # (no article: nothing says it is one thing)
        ("I want to checkup and x-ray.", HELP),  # closed by "and"
        ("Yes.", ANYTHING_ELSE),
        ("No, that's all.", ANYTHING_ELSE),
        ("I need a cleaning.", NAME),  # not what the name question asks for
        ("I need a cleaning.", ""),
        ("I'd like to come in and get a cleaning.", HELP),  # (too long for a first item)
    ],
)
def test_other_answers_to_an_open_question_keep_their_window(text: str, asked: str) -> None:
    assert classify_ending(text, asked) is Ending.COMPLETE


@pytest.mark.parametrize(
    ("heard", "verdict_at", "verdict", "went_on"),
    [
        ("I wanna check.", 0.46, 0.304, 0.777),  # Piper
        ("I want the check.", 0.33, 0.845, 0.701),  # espeak-ng
    ],
)
def test_the_first_thing_after_an_open_question_waits_for_the_next(
    heard: str, verdict_at: float, verdict: float, went_on: float
) -> None:
    """held_out_lists.toml: "I want a checkup, ... an X-ray, ... and a cleaning." after "How
    can I help you today?" (500 ms pauses). The partial came before the pause; the complete
    window (400 ms) ended the turn before the model's verdict (Piper) or with it (espeak-ng),
    and the caller went on 777 / 701 ms after the speech's end."""
    frames = detector(HELP)
    frames.feed(0.9, 0.9)
    frames.det.update_transcript(heard)
    paused = frames.pause()
    assert not ended_in(frames, verdict_at - PAUSED_AFTER_S)
    assert frames.det.update_model(verdict, paused.speech_end)
    assert not ended_in(frames, went_on - verdict_at)
    frames = detector(NAME)  # the same words after a question that asks for no thing
    frames.feed(0.9, 0.9)
    frames.det.update_transcript(heard)
    frames.pause()
    assert ended_in(frames, 0.4 - PAUSED_AFTER_S + 0.02)  # the complete window
