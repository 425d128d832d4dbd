"""Measurements from the wire on scripted timelines (pure functions, exact times)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.wire.measure import (
    HOLD_S,
    agent_replies,
    barge_in_stop,
    caller_wer,
    check_expected,
    contains_words,
    cpu_per_call_minute,
    edit_distance,
    greeting_s,
    line_latencies,
    normalize_words,
    packet_gaps,
    speech_extent,
    speech_spans,
)
from bench.wire.timeline import CallTimeline, NodeTranscript, Packet, SentLine

from .wire_fakes import silence, tone

F = 0.02


def pcm(samples: np.ndarray) -> bytes:
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()


SPEECH = pcm(tone(F))
QUIET = pcm(silence(F))


def packets(start: float, n: int, *, speech: bool = True) -> list[Packet]:
    return [Packet(start + i * F, SPEECH if speech else QUIET) for i in range(n)]


def sent(index: int, onset: float, end: float, *, barge_in: bool = False, **kw: str) -> SentLine:
    return SentLine(
        index=index,
        text=kw.get("text", f"line {index}"),
        start=onset - 0.2,
        speech_onset=onset,
        speech_end=end,
        end=end + 0.2,
        barge_in=barge_in,
        expect=kw.get("expect", ""),
    )


def test_speech_extent_finds_the_loud_part_to_5_ms() -> None:
    samples = np.concatenate([silence(0.1), tone(0.25), silence(0.05)])
    assert speech_extent(samples) == (1600, 1600 + 4000)
    assert speech_extent(silence(0.3)) is None
    # A quiet hiss (-60 dBFS) is not speech.
    assert speech_extent(tone(0.1, amplitude=33)) is None


def test_speech_spans_merge_pauses_shorter_than_the_hold() -> None:
    pk = packets(1.0, 10) + packets(1.2 + HOLD_S - 0.04, 5) + packets(3.0, 3)
    spans = speech_spans(pk)
    assert [(round(s.start, 3), round(s.end, 3)) for s in spans] == [
        (1.0, round(1.2 + HOLD_S - 0.04 + 5 * F, 3)),
        (3.0, 3.06),
    ]


def test_voice_to_voice_is_caller_speech_end_to_first_agent_speech_received() -> None:
    tl = CallTimeline(call=0, answered=0.0)
    tl.lines = [sent(0, 2.0, 3.0), sent(1, 6.0, 6.5)]
    # The greeting, then a reply 0.48 s after line 0 whose first packet starts quiet for 5 ms.
    lead = pcm(np.concatenate([silence(0.005), tone(0.015)]))
    tl.packets = packets(0.5, 20) + [Packet(3.475, lead)] + packets(3.495, 30)
    # Line 1 gets no reply at all.
    lat = line_latencies(tl)
    assert [t.line for t in lat] == [0, 1]
    assert lat[0].v2v_s == pytest.approx(0.48)
    assert lat[1].v2v_s is None
    assert greeting_s(tl) == pytest.approx(0.5)


def test_agent_speech_running_through_the_line_end_is_not_a_reply() -> None:
    tl = CallTimeline(call=0, answered=0.0)
    tl.lines = [sent(0, 2.0, 3.0)]
    # The agent talked over the whole line and on past its end, then answered at 4.0.
    tl.packets = packets(1.5, 100) + packets(4.0, 10)
    assert line_latencies(tl)[0].v2v_s == pytest.approx(1.0)


def test_barge_in_stop_is_onset_to_the_end_of_the_interrupted_speech() -> None:
    line = sent(1, 5.0, 6.0, barge_in=True)
    # Agent speaking from 4.0; the last speech packet arrives at 5.14 (ends 5.16).
    spans = speech_spans(packets(4.0, 58))
    assert barge_in_stop(spans, line) == (pytest.approx(0.16), False)
    # Still speaking when the caller's line ended: it never stopped.
    spans = speech_spans(packets(4.0, 110))
    assert barge_in_stop(spans, line) == (None, False)
    # Nothing to interrupt: the agent had finished before the onset.
    spans = speech_spans(packets(3.0, 10))
    assert barge_in_stop(spans, line) == (None, True)


def test_barge_in_in_a_call_timeline() -> None:
    tl = CallTimeline(call=0, answered=0.0)
    tl.lines = [sent(0, 1.0, 2.0), sent(1, 3.0, 4.0, barge_in=True)]
    tl.packets = packets(2.3, 40) + packets(4.6, 10)  # reply 2.3..3.1, cut at 3.1
    lat = line_latencies(tl)
    assert lat[0].v2v_s == pytest.approx(0.3)
    assert lat[1].barge_in_stop_s == pytest.approx(0.1)
    assert lat[1].v2v_s == pytest.approx(0.6)


def test_packet_gaps_skip_the_callers_turns() -> None:
    tl = CallTimeline(call=0, answered=0.0)
    tl.lines = [sent(0, 2.0, 3.0)]
    # 10 packets, a 60 ms hiccup, 10 more; then the agent waits for the caller; 5 more.
    at = [0.5 + i * F for i in range(10)]
    at += [at[-1] + 0.06 + i * F for i in range(10)]
    at += [3.5 + i * F for i in range(5)]
    tl.packets = [Packet(t, SPEECH) for t in at]
    gaps = packet_gaps(tl)
    assert len(gaps) == 9 + 1 + 9 + 4
    assert max(gaps) == pytest.approx(0.06)
    assert sorted(gaps)[:-1] == pytest.approx([F] * 22)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("At two PM.", ["at", "two", "pm"]),
        ("At 2 p.m.", ["at", "two", "pm"]),
        ("at 2PM", ["at", "two", "pm"]),
        ("Yes, that's right!", ["yes", "that's", "right"]),
        ("twenty-one 21", ["twenty", "one", "twenty", "one"]),
    ],
)
def test_normalize_words(text: str, expected: list[str]) -> None:
    assert normalize_words(text) == expected


def test_word_error_rate() -> None:
    assert edit_distance("a b c".split(), "a x c d".split()) == 2
    user = [
        NodeTranscript(role="user", text="My name is Maria Garcia."),
        NodeTranscript(role="agent", text="What day?"),
        NodeTranscript(role="user", text="At 2 p.m."),
    ]
    w = caller_wer(["My name is Maria Garcia.", "At two PM."], user)
    assert (w.errors, w.ref_words, w.wer) == (0, 8, 0.0)
    w = caller_wer(["My name is Maria Garcia."], [NodeTranscript(role="user", text="my name is")])
    assert (w.errors, w.ref_words) == (2, 5)
    assert caller_wer([], []).wer is None


def test_expected_replies_follow_the_user_turns() -> None:
    transcripts = [
        NodeTranscript(role="agent", text="Thanks for calling Bright Smile Dental."),
        NodeTranscript(role="agent", text="How can I help you today?"),
        NodeTranscript(role="user", text="book a cleaning"),
        NodeTranscript(role="agent", text="Sure. Can I have your name, please?"),
        NodeTranscript(role="user", text="Maria"),
        NodeTranscript(role="agent", text="What day would you like?"),
    ]
    greeting, replies = agent_replies(transcripts)
    assert greeting.startswith("Thanks for calling") and greeting.endswith("today?")
    assert replies == ["Sure. Can I have your name, please?", "What day would you like?"]
    tl = CallTimeline(call=0, transcripts=transcripts, expect_greeting="bright smile dental")
    tl.lines = [sent(0, 1.0, 2.0, expect="your name"), sent(1, 3.0, 4.0, expect="what time")]
    results = check_expected(tl)
    assert [(r.line, r.ok) for r in results] == [(-1, True), (0, True), (1, False)]
    assert contains_words("So that's a cleaning at 2 PM.", "at two pm")
    assert not contains_words("two at pm", "at two pm")


def test_cpu_per_call_minute() -> None:
    assert cpu_per_call_minute(30.0, 2.0) == 15.0
    assert cpu_per_call_minute(None, 2.0) is None
    assert cpu_per_call_minute(3.0, 0.0) is None
