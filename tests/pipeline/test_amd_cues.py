"""The detector's word cues beyond "leave a message": how greetings open and sign off, and how
a person answering talks to the caller (a question, what they are doing now), including lines
that share words with the other class; and a person decided by timing alone when the
transcript comes late. Real audio (espeak-ng through G.711, Silero VAD) on a virtual
timeline, as in `test_amd.py`."""

from __future__ import annotations

import numpy as np
import pytest

from agents.spec import AmdSettings
from pipeline.amd import AmdDecision, AnsweringMachineDetector, answer_phrase, greeting_phrase
from pipeline.vad import SileroModel
from tests.pipeline.test_amd import classify, line, silence
from tests.support.speech import espeak


@pytest.fixture(scope="module")
def silero() -> SileroModel:
    return SileroModel()


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("This is Dave. Talk to you later, bye!", "talk to you later"),
        ("It's Nina. Bye.", "bye"),
        ("Bye.", ""),  # Whisper tiny's "Bye." for a person's lone "Hi."
        ("Hi, bye", ""),
        ("You've reached Kim and Lee.", "you've reached"),
        ("Hello, you have reached the office of Doctor Patel.", "you have reached"),
        ("Thank you for calling Bright Smile Dental.", "thank you for calling"),
        ("Say your thing and I'll hit you back.", "i'll hit you back"),
        ("We will ring you back tonight.", "we will ring you back"),
        ("Goodbye is not a word of ours, nor is bye-bye's first half alone", "bye"),
        ("Hi, I'm back, who's this?", ""),  # "back" without "I'll ... you"
        ("Hello? What's up?", ""),
        ("Sorry we missed you.", ""),  # shares "sorry" with a person's answer: neither
    ],
)
def test_greeting_openers_and_sign_offs(text: str, phrase: str) -> None:
    assert greeting_phrase(text) == phrase


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Hi, it's Tom, sorry, I'm driving right now, what's up?", "what's up"),
        ("Hey, I'm cooking, go ahead.", "go ahead"),
        ("Hey, it's Ana, I'm cooking dinner", "i'm cooking"),
        ("Yes, I am at work at the moment", "i am at work"),
        ("Hang on a second.", "hang on"),
        ("Hello? Anyone there?", "anyone there"),
        # greetings' first-person talk is not what the person is doing now
        ("Hey, it's Chris. I'm probably out on my bike, or just ignoring my phone.", ""),
        ("Jennifer Walsh. I'm away from my desk.", ""),
        ("I'm currently traveling and will return on Monday.", ""),
        ("You've reached Sam, talk to you later.", ""),
    ],
)
def test_a_persons_words_to_the_caller(text: str, phrase: str) -> None:
    assert answer_phrase(text) == phrase


BUSY = "Hey, it's Ana, sorry, I'm cooking dinner right now, so what's up?"


def test_a_long_answer_about_what_they_are_doing_is_human(silero: SileroModel) -> None:
    """Three seconds without a pause would be a greeting by its length; "I'm cooking" heard
    in it makes it a person's."""
    audio = line(silence(0.3), espeak(BUSY))
    assert classify(silero, audio).decision.result == "machine"  # by its length alone
    got = classify(silero, audio, transcript=(2.0, "Hey, it's Ana, sorry, I'm cooking"))
    d = got.decision
    assert d.result == "human" and d.reason in {"short_greeting", "deadline"}, d
    assert d.evidence.answer == "i'm cooking" and d.decided_ms <= 3500 + 800
    assert got.cue is None


def test_the_greetings_sign_off_wins_over_a_persons_words(silero: SileroModel) -> None:
    text = "Hey, I'm driving right now, I'll call you back."
    audio = line(silence(0.3), espeak(text))
    d = classify(silero, audio, transcript=(1.6, text)).decision
    assert (d.result, d.reason) == ("machine", "greeting_phrase"), d
    assert (d.evidence.phrase, d.evidence.answer) == ("i'll call you back", "i'm driving")


def test_a_short_greeting_that_signs_off_is_a_machine_without_a_beep(
    silero: SileroModel,
) -> None:
    """Short, then silence, as a "Hello?" is: its words, heard before the silence rule's wait
    is over, make it a machine, and the message starts after its end silence."""
    audio = line(silence(0.3), espeak("It's Dave, talk soon."))
    assert classify(silero, audio).decision.result == "human"  # by its timing alone
    got = classify(silero, audio, transcript=(2.2, "It's Dave, talk soon."))
    d = got.decision
    assert (d.result, d.reason, d.evidence.phrase) == (
        "machine",
        "greeting_phrase",
        "talk soon",
    ), d
    assert got.cue is not None and got.cue.after == "silence"


def test_a_hello_is_human_by_timing_when_its_transcript_comes_late(silero: SileroModel) -> None:
    """The recogniser slow under load: "Hello?"'s transcript arrives after the deadline. The
    short utterance and the silence after it decide "human" without it."""
    audio = line(silence(0.3), espeak("Hello?"), silence(4.0))
    got = classify(silero, audio, transcript=(5.0, "Hello?"))
    d = got.decision
    assert (d.result, d.reason) == ("human", "short_greeting"), d
    assert d.decided_ms <= 2500 and d.evidence.words == 0  # no words heard yet
    assert got.cue is None


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("Hello, is this about the delivery? I've been waiting.", "question"),
        ("I'm at the right now. What can I do?", "question"),  # a garbled transcript's question
        ("Hello?", ""),  # a lone "Hello?" is also a greeting's first word, cut off
        ("Yes? Hello?", "yes"),  # no question to the caller: the interjection it opens with
        ("Hi, you've reached Sam. Leave a message.", ""),
    ],
)
def test_a_question_to_the_caller(text: str, cue: str) -> None:
    assert answer_phrase(text) == cue


def speak(detector: AnsweringMachineDetector, start: float, seconds: float) -> None:
    """`seconds` of speech frames (the VAD's flags) from `start` (20 ms each)."""
    frame = np.zeros(320, dtype=np.int16)
    for i in range(round(seconds / 0.02)):
        detector.feed(frame, start + i * 0.02, speech=True)


def quiet_until_decided(detector: AnsweringMachineDetector, start: float) -> AmdDecision:
    frame = np.zeros(320, dtype=np.int16)
    for i in range(250):
        if detector.decision is not None:
            return detector.decision
        detector.feed(frame, start + i * 0.02, speech=False)
    raise AssertionError("no decision in 5 s")


@pytest.mark.parametrize(
    ("text", "wait_ms"),
    [
        ("Sorry, I'm cooking.", 480.0),  # 0.6 of human_silence_ms 800
        ("Hi, is that the clinic?", 480.0),
        ("Hello, this is Mark.", 800.0),  # no words to the caller: the whole wait
        ("Hello?", 800.0),
    ],
)
def test_after_a_persons_words_a_shorter_pause_decides(text: str, wait_ms: float) -> None:
    detector = AnsweringMachineDetector(AmdSettings(), answered_at=0.0)
    speak(detector, 0.3, 1.2)
    assert detector.heard(text, 1.5) == ()  # words alone decide nothing
    d = quiet_until_decided(detector, 1.5)
    assert (d.result, d.reason) == ("human", "short_greeting")
    assert abs(d.evidence.silence_ms - wait_ms) <= 20.0, d


def test_a_greeting_that_asks_a_question_is_a_machine_by_its_words() -> None:
    """A question heard in a greeting that also opens as one: the greeting's words win."""
    detector = AnsweringMachineDetector(AmdSettings(), answered_at=0.0)
    speak(detector, 0.3, 1.2)
    (d,) = detector.heard("Thank you for calling Bright Smile, right?", 1.5)
    assert isinstance(d, AmdDecision)
    assert (d.result, d.reason, d.evidence.phrase) == (
        "machine",
        "greeting_phrase",
        "thank you for calling",
    )
    assert d.evidence.answer == "question"
