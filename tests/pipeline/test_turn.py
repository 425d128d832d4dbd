"""Turn detection, sans-IO: frames of speech probability with times, transcript updates."""

from __future__ import annotations

import pytest

from agents.spec import TurnSettings
from pipeline.turn import (
    Ending,
    SpeechDiscarded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
    TurnEnded,
    TurnEvent,
    classify_ending,
)

F = 0.02


def run(det: TurnDetector, pattern: list[tuple[float, float]], t0: float = 0.0) -> list[TurnEvent]:
    """Feed (probability, seconds) runs; return every event."""
    events: list[TurnEvent] = []
    t = t0
    for prob, seconds in pattern:
        for _ in range(round(seconds / F)):
            t += F
            events.extend(det.feed(prob, t))
    return events


def settings(**kw: int) -> TurnSettings:
    base = {"silence_ms": 600, "complete_silence_ms": 250, "incomplete_silence_ms": 1500}
    base.update(kw)
    return TurnSettings(**base)  # type: ignore[arg-type]


def ended(events: list[TurnEvent]) -> list[TurnEnded]:
    return [e for e in events if isinstance(e, TurnEnded)]


def test_turn_ends_after_the_silence_window() -> None:
    det = TurnDetector(settings())
    events = run(det, [(0.0, 0.2), (0.9, 1.0)])
    det.update_transcript("Next Tuesday")  # words, neither whole nor unfinished: neutral
    events += run(det, [(0.0, 1.0)], t0=1.2)
    assert isinstance(events[0], SpeechStarted) and events[0].at == pytest.approx(0.2)
    [end] = ended(events)
    assert end.speech_start == pytest.approx(0.2)
    assert end.speech_end == pytest.approx(1.2)
    assert end.decided_at - end.speech_end == pytest.approx(0.6)
    paused = [e for e in events if isinstance(e, SpeechPaused)]
    assert len(paused) == 1 and paused[0].speech_end == pytest.approx(1.2)


def test_before_any_transcript_the_turn_waits_the_list_window() -> None:
    """No transcript yet is no words yet: nothing to judge or to reply to, and a pause that
    comes before the recogniser's first event may be one between a list's items."""
    det = TurnDetector(settings())
    events = run(det, [(0.0, 0.2), (0.9, 1.0), (0.0, 0.9)])
    assert ended(events) == []  # (the neutral window, 0.6 s, would have ended it)
    events += run(det, [(0.0, 0.3)], t0=2.1)
    [end] = ended(events)
    assert end.decided_at - end.speech_end == pytest.approx(1.0)  # list_silence_ms
    # the next utterance starts with no words again, whatever the last one ended with
    det.update_transcript("What are your hours?")
    events = run(det, [(0.9, 0.5), (0.0, 0.9)], t0=2.4)
    assert ended(events) == []


def test_complete_sentence_shortens_the_window() -> None:
    det = TurnDetector(settings())
    events = run(det, [(0.9, 1.0)])
    det.update_transcript("What are your opening hours?")
    events += run(det, [(0.0, 1.0)], t0=1.0)
    [end] = ended(events)
    assert end.window_s == pytest.approx(0.25)
    assert end.decided_at - end.speech_end == pytest.approx(0.26)  # next frame boundary


@pytest.mark.parametrize(
    "text",
    ["I'd like to book a cleaning for", "um", "my number is 555 12", "so, and", "Tuesday and"],
)
def test_unfinished_speech_lengthens_the_window(text: str) -> None:
    det = TurnDetector(settings())
    events = run(det, [(0.9, 1.0)])
    det.update_transcript(text)
    events += run(det, [(0.0, 1.0)], t0=1.0)
    assert ended(events) == []  # 1 s of silence is not enough after an unfinished phrase
    events += run(det, [(0.0, 0.6)], t0=2.0)
    [end] = ended(events)
    assert end.decided_at - end.speech_end == pytest.approx(1.5)


def test_a_pause_inside_the_window_continues_the_turn() -> None:
    det = TurnDetector(settings())
    events = run(det, [(0.9, 0.6), (0.0, 0.4), (0.9, 0.6), (0.0, 1.1)])  # (no words: 1 s)
    assert [type(e) for e in events] == [
        SpeechStarted,
        SpeechPaused,
        SpeechResumed,
        SpeechPaused,
        TurnEnded,
    ]
    [end] = ended(events)
    assert end.speech_start == pytest.approx(0.0) and end.speech_end == pytest.approx(1.6)


def test_hysteresis_keeps_speech_between_thresholds() -> None:
    det = TurnDetector(settings(), speech_threshold=0.5, silence_threshold=0.35)
    events = run(det, [(0.4, 0.5)])  # below the start threshold: nothing starts
    assert events == []
    events = run(det, [(0.8, 0.2), (0.4, 0.5), (0.1, 1.1)], t0=0.5)
    [end] = ended(events)
    assert end.speech_end == pytest.approx(1.2)  # 0.4 frames counted as speech once started


def test_a_soft_stretch_after_a_dip_resumes_the_utterance() -> None:
    # "When is my appoint-ment?" through G.711: Silero dipped under the silence threshold at
    # the p closure, then scored the rest 0.36-0.46 (under the start threshold); with a 200 ms
    # window the turn ended mid-word. Inside an utterance, what is not silence is speech.
    det = TurnDetector(settings(), speech_threshold=0.5, silence_threshold=0.35)
    events = run(det, [(0.7, 0.5), (0.2, 0.1), (0.42, 0.3), (0.1, 1.1)])
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, TurnEnded]
    [end] = ended(events)
    assert end.speech_end == pytest.approx(0.9)  # the soft stretch is the line's end
    # Between utterances the start threshold still rules: 0.42 alone starts nothing.
    assert run(det, [(0.42, 1.0)], t0=2.0) == []


def test_clicks_shorter_than_min_speech_are_discarded() -> None:
    det = TurnDetector(settings(min_speech_ms=120))
    events = run(det, [(0.9, 0.06), (0.0, 1.2)])
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, SpeechDiscarded]


@pytest.mark.parametrize(
    ("text", "ending"),
    [
        ("What are your hours?", Ending.COMPLETE),
        ("My name is Maria Garcia.", Ending.COMPLETE),
        ("Next Tuesday", Ending.NEUTRAL),
        ("", Ending.UNHEARD),
        ("I want to book a cleaning and", Ending.INCOMPLETE),
        ("Um", Ending.INCOMPLETE),
        ("my card number is 4111 1111", Ending.INCOMPLETE),
        ("call me on five five five one two", Ending.INCOMPLETE),
        ("my order number is 1234567890.", Ending.COMPLETE),
        ("well,", Ending.INCOMPLETE),
        ("Let me think.", Ending.INCOMPLETE),
        ("Hold on.", Ending.INCOMPLETE),
        ("Okay, one second.", Ending.INCOMPLETE),
        ("That works.", Ending.COMPLETE),
        ("My order number is 47.", Ending.INCOMPLETE),
        ("My member ID is 77", Ending.INCOMPLETE),
        ("The code is four one.", Ending.INCOMPLETE),
        ("Table for two.", Ending.COMPLETE),
        ("Two.", Ending.COMPLETE),
    ],
)
def test_classify_ending(text: str, ending: Ending) -> None:
    assert classify_ending(text) is ending
