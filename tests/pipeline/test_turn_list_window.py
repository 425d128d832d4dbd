"""The list window (`list_silence_ms`) and the cut-ins the turn-taking bench traced at 4a8d472
(issue 16), replayed on the detector's frame clock with the transcripts Whisper gave and the
audio model's verdicts at each pause. A 500 ms spliced pause between list items read as 610-740
ms of silence to the VAD, so the neutral window (600 ms) ended the turn as the caller went on."""

from __future__ import annotations

import msgspec
import pytest

from agents.spec import TurnSettings
from pipeline.turn_text import Ending, classify_ending, is_enumeration
from tests.pipeline.test_turn_audio_model import Frames
from tests.pipeline.test_turn_text import DAY, TIME, detector, ended_in, pause_with, window_after

PAUSED_AFTER_S = 0.16
"""Silence the detector needs to report a pause (`pause_with` waits it out first)."""


def test_a_list_of_days_waits_through_pauses_the_neutral_window_cut() -> None:
    """Piper, lists.toml: "I could do Monday, ... Wednesday, ... or Friday." The traced
    silences were 740 and 715 ms; the model's verdicts 0.313, 0.021, 0.974."""
    frames = detector(DAY)
    frames.feed(0.9, 1.0)
    pause_with(frames, "I could do Monday.", 0.313)
    assert not ended_in(frames, 0.74 - PAUSED_AFTER_S)
    frames.feed(0.9, 0.8)
    pause_with(frames, "I could do Monday, Wednesday.", 0.021)
    assert not ended_in(frames, 0.715 - PAUSED_AFTER_S)
    frames.feed(0.9, 0.6)
    pause_with(frames, "I could do Monday, Wednesday, or Friday.", 0.974)
    assert window_after(frames) == 0.2  # closed by "or": whole, the model's quick window


def test_an_unpunctuated_first_item_is_open_whatever_the_model_says() -> None:
    """Piper, lists.toml: "Nine, ... ten, ... or eleven in the morning." after "And what time
    works best for you?": the pause's transcript was "9" (no punctuation: neutral) and the
    model said 0.982, so the turn ended 200 ms into a 680 ms pause."""
    assert classify_ending("9", TIME) is Ending.OPEN
    assert classify_ending("I could do Monday", DAY) is Ending.OPEN
    assert classify_ending("9", "") is Ending.NEUTRAL  # (no choice asked: nothing says list)
    frames = detector(TIME)
    frames.feed(0.9, 0.4)
    pause_with(frames, "9", 0.982)
    assert not ended_in(frames, 0.68 - PAUSED_AFTER_S)


def test_a_misheard_first_item_is_still_held() -> None:
    """espeak-ng, lists.toml: "I could do Monday," heard as "I could do my own day." (verdict
    0.053), then 612 ms of silence."""
    frames = detector(DAY)
    frames.feed(0.9, 1.2)
    pause_with(frames, "I could do my own day.", 0.053)
    assert not ended_in(frames, 0.612 - PAUSED_AFTER_S)
    assert window_after(frames) == 1.0


def test_a_pause_with_no_words_heard_waits_the_list_window() -> None:
    """Piper, hesitation.toml: "At, uh, ... two PM, I think." after "And what time works best
    for you?": the recogniser had given "" for "At, uh," (no words), the model 0.375, and the
    neutral window ended the turn in an 800 ms pause."""
    assert classify_ending("", TIME) is Ending.UNHEARD
    frames = detector(TIME)
    frames.feed(0.9, 0.5)
    pause_with(frames, "", 0.375)
    assert not ended_in(frames, 0.8 - PAUSED_AFTER_S)
    frames.feed(0.9, 0.9)
    pause_with(frames, "At 2pm, I think.", 0.616)
    assert window_after(frames) == 1.0  # a short answer to a time question: maybe a list
    frames = detector(TIME)
    frames.feed(0.9, 0.5)
    pause_with(frames, "", 0.375)
    frames.det.update_transcript("At 2pm, I think.")  # the pause's words, late
    assert frames.det.window_s() == 1.0
    frames.det.agent_asked("")
    frames.det.update_transcript("At 2pm, I think.")
    assert frames.det.window_s() == 0.4  # (no question: whole, the short window)


def test_no_words_and_a_confident_complete_is_not_the_end() -> None:
    """The model's quick "complete" needs words: with none, the turn waits the list window
    (the reply could not start anyway)."""
    frames = detector()
    frames.feed(0.9, 0.5)
    pause_with(frames, "", 0.987)
    assert window_after(frames) == 1.0


def test_no_words_and_a_confident_incomplete_waits_the_long_window() -> None:
    frames = detector()
    frames.feed(0.9, 0.5)
    pause_with(frames, "", 0.028)
    assert window_after(frames) == 1.5


def test_no_transcript_yet_waits_like_no_words() -> None:
    """Piper, held_out_lists.toml (after run of 1a814e2): "Tuesday, ... Thursday, ..." said
    after the name question was asked again. No transcript event came before the pause (no
    partial, no empty one), the model said 0.979, and the neutral window ended the turn 600 ms
    into the pause; "Tuesday." came in 841 ms after the speech's end, the caller went on at 881
    ms. No transcript yet now waits the list window, as an empty one does."""
    frames = detector(DAY)  # (where the line belongs: the day question)
    frames.feed(0.9, 0.2)
    paused = frames.pause()
    assert frames.det.update_model(0.979, paused.speech_end)  # (no words: not "complete")
    assert not ended_in(frames, 0.84 - PAUSED_AFTER_S)
    frames.det.update_transcript("Tuesday.")  # late: a day after the day question, maybe a list
    assert not ended_in(frames, 0.04)
    # In that call the name question came before it: its late words and the model's
    # "complete" end the turn at the next frame (a whole answer, for all the words can tell).
    frames = detector("Sorry, I didn't hear anything. Can I have your name, please?")
    frames.feed(0.9, 0.2)
    paused = frames.pause()
    assert frames.det.update_model(0.979, paused.speech_end)
    assert not ended_in(frames, 0.84 - PAUSED_AFTER_S)
    frames.det.update_transcript("Tuesday.")
    assert ended_in(frames, 0.04)
    # with no transcript at all the turn ends at the list window (then its words decide)
    frames = Frames(detector().det)
    frames.feed(0.9, 0.5)
    assert window_after(frames) == 1.0


def test_an_item_written_as_its_own_sentence_is_a_list_item() -> None:
    """Piper, lists.toml: "What are your hours on Monday, ... Tuesday, ... and Saturday?" At the
    second pause Whisper wrote "What are your hours on Monday? Tuesday." and the model said
    0.949; the turn ended 200 ms into a 700 ms pause. (Its first pause, "What are your hours on
    Monday?", is a whole question to the words and to the model: still cut there.)"""
    assert is_enumeration("What are your hours on Monday? Tuesday.")
    assert is_enumeration("9 a.m., 10 a.m.")
    assert not is_enumeration("Yes. Monday.")
    assert not is_enumeration("Let's do Tuesday. 2 PM.")  # a day, then a time: one answer
    assert not is_enumeration("Tuesday at 2 p.m.")
    frames = detector()
    frames.feed(0.9, 0.5)
    pause_with(frames, "What are your hours on Monday? Tuesday.", 0.949)
    assert not ended_in(frames, 0.7 - PAUSED_AFTER_S)
    assert classify_ending("What are your hours on Monday?") is Ending.COMPLETE


@pytest.mark.parametrize("heard", ["Left me think.", "Lit me see.", "Lemme check."])
def test_a_hold_misheard_in_its_first_word_still_holds(heard: str) -> None:
    """espeak-ng, hesitation.toml: "Let me think. ... Next, um, Tuesday." heard as "Left me
    think." (verdict 0.963) ended the turn in a 1.14 s pause."""
    assert classify_ending(heard, DAY) is Ending.INCOMPLETE
    frames = detector(DAY)
    frames.feed(0.9, 0.7)
    pause_with(frames, heard, 0.963)
    assert not ended_in(frames, 1.14 - PAUSED_AFTER_S)


@pytest.mark.parametrize("line", ["Call me.", "Give it to me.", "Tell me."])
def test_lines_ending_on_me_are_not_holds(line: str) -> None:
    assert classify_ending(line) is Ending.COMPLETE


@pytest.mark.parametrize("value", [99, 10001])
def test_the_list_window_is_validated(value: int) -> None:
    with pytest.raises(msgspec.ValidationError, match="list_silence_ms"):
        msgspec.convert({"list_silence_ms": value}, TurnSettings)


def test_an_id_spelled_in_letters_waits_for_the_rest() -> None:
    """Piper, numbers.toml: "My member ID is A B, ... seven seven, ... three." (500 ms pauses),
    heard "My number ID is a B." at the first pause with a verdict of 0.957: the short window
    ended it (after run at 1a814e2)."""
    assert classify_ending("My number ID is a B.") is Ending.INCOMPLETE
    assert classify_ending("My member ID is A B, 7 7.") is Ending.INCOMPLETE
    assert classify_ending("Vitamin D.") is Ending.COMPLETE  # (no ID named)
    assert classify_ending("I want to see Doctor B.") is Ending.COMPLETE
    frames = detector()
    frames.feed(0.9, 1.2)
    pause_with(frames, "My number ID is a B.", 0.957)
    assert not ended_in(frames, 0.83 - PAUSED_AFTER_S)
