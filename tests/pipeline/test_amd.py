"""Answering-machine detection on real audio: espeak-ng greetings and "Hello?" lines through a
G.711 line, scored by the real Silero VAD, on a virtual timeline (frame times, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from agents.spec import AmdSettings
from media.frames import SAMPLE_RATE, frames_from_samples
from pipeline.amd import (
    AmdDecision,
    AnsweringMachineDetector,
    VoicemailCue,
    answer_phrase,
    greeting_phrase,
    render_voicemail,
)
from pipeline.vad import SileroModel, VadStream, open_gate
from tests.support.speech import Samples, espeak, telephone

ANSWERED = 1000.0  # the answer's time on the virtual timeline
SILENCE_THRESHOLD = 0.35  # `vad.silence_threshold`: a frame at or above it is voiced

GREETING = (
    "Hi, you've reached Doctor Smith's office. We can't take your call right now, "
    "please leave a message after the tone."
)
SHORT_GREETING = "Not available. Leave a message."


@pytest.fixture(scope="module")
def silero() -> SileroModel:
    return SileroModel()


def silence(s: float) -> Samples:
    return np.zeros(int(SAMPLE_RATE * s), dtype=np.int16)


def beep(hz: float, ms: int) -> Samples:
    t = np.arange(int(SAMPLE_RATE * ms / 1000)) / SAMPLE_RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def line(*parts: Samples) -> Samples:
    """The parts one after the other, as heard through a G.711 mu-law line."""
    return telephone(np.concatenate(parts))


@dataclass
class Outcome:
    decision: AmdDecision
    cue: VoicemailCue | None
    frames: int
    outputs: list[object] = field(default_factory=list)


def classify(
    silero: SileroModel,
    audio: Samples,
    settings: AmdSettings | None = None,
    transcript: tuple[float, str] | None = None,
) -> Outcome:
    """Feed the audio (then silence) frame by frame until the detector is done: a decision,
    and for a machine its cue. `transcript`: (seconds after the answer, text) heard then."""
    detector = AnsweringMachineDetector(settings or AmdSettings(), answered_at=ANSWERED)
    vad = VadStream(silero, gate=open_gate)
    frames = frames_from_samples(np.concatenate([audio, silence(40.0)]))
    outputs: list[object] = []
    for i, frame in enumerate(frames):
        at = ANSWERED + i * 0.02
        if transcript is not None and at - ANSWERED >= transcript[0]:
            outputs += detector.heard(transcript[1], at)
            transcript = None
        outputs += detector.feed(frame.samples, at, vad.feed(frame) >= SILENCE_THRESHOLD)
        if detector.done:
            break
    assert detector.decision is not None
    assert outputs.count(detector.decision) == 1  # reported once
    return Outcome(detector.decision, detector.cue, i + 1, outputs)


@pytest.mark.parametrize(
    ("lead_s", "text"),
    [(0.3, "Hello?"), (0.5, "Yes, speaking."), (2.0, "Hello?"), (0.2, "Hello, this is Mary.")],
)
def test_a_person_answering_briefly_is_human_without_waiting(
    silero: SileroModel, lead_s: float, text: str
) -> None:
    got = classify(silero, line(silence(lead_s), espeak(text), silence(1.5), espeak("Hello?")))
    d = got.decision
    assert (d.result, d.reason) == ("human", "short_greeting"), d
    assert d.decided_ms <= 3500
    assert d.evidence.first_speech_ms is not None
    assert abs(d.evidence.first_speech_ms - lead_s * 1000) <= 200
    assert d.evidence.utterances == 1 and d.evidence.greeting_ms < 2500
    assert got.cue is None
    print(f"{text!r} after {lead_s} s: human at {d.decided_ms} ms")


def test_nobody_speaking_is_unknown_at_the_deadline(silero: SileroModel) -> None:
    d = classify(silero, line(silence(5.0))).decision
    assert (d.result, d.reason, d.decided_ms) == ("unknown", "silence", 3500.0)
    assert d.evidence.first_speech_ms is None and d.evidence.utterances == 0


def test_a_long_greeting_then_a_beep_is_a_machine_and_the_message_follows_the_beep(
    silero: SileroModel,
) -> None:
    greeting = espeak(GREETING)
    audio = line(silence(0.4), greeting, silence(0.6), beep(1000.0, 500))
    beep_end_ms = 1000 * (0.4 + len(greeting) / SAMPLE_RATE + 0.6 + 0.5)
    got = classify(silero, audio)
    d = got.decision
    assert (d.result, d.reason) == ("machine", "long_greeting"), d
    assert 2500 <= d.decided_ms <= 3500 and d.evidence.greeting_ms >= 2500
    assert got.cue is not None and got.cue.after == "beep"
    assert abs(got.cue.at_ms - beep_end_ms) <= 40
    assert got.cue.beep_hz is not None and abs(got.cue.beep_hz - 1000) <= 20
    # reported one frame after the beep's end: far within 500 ms
    assert got.frames * 20 - got.cue.at_ms <= 60
    assert got.outputs == [d, got.cue]


def test_a_greeting_without_a_beep_gets_the_message_after_its_end_silence(
    silero: SileroModel,
) -> None:
    greeting = espeak(GREETING)
    got = classify(silero, line(silence(0.3), greeting))
    assert got.decision.result == "machine"
    assert got.cue is not None and got.cue.after == "silence"
    loud = np.flatnonzero(np.abs(greeting.astype(np.int32)) > 300)
    end_ms = 1000 * (0.3 + (loud[-1] + 1) / SAMPLE_RATE)  # the greeting's last sound
    # beep_wait_ms (2500) after the last voiced frame (the VAD's tail: within 300 ms)
    assert end_ms + 2500 - 100 <= got.cue.at_ms <= end_ms + 2500 + 300


def test_a_short_greeting_is_a_machine_by_its_words(silero: SileroModel) -> None:
    audio = line(silence(0.3), espeak(SHORT_GREETING), silence(0.5), beep(1400.0, 300))
    got = classify(silero, audio, transcript=(1.0, "Not available. Leave a"))
    d = got.decision
    assert (d.result, d.reason) == ("machine", "greeting_phrase"), d
    assert d.evidence.phrase == "not available" and d.decided_ms == 1000.0
    assert got.cue is not None and got.cue.after == "beep"


def test_a_beep_alone_is_a_machine_and_the_message_starts_at_once(silero: SileroModel) -> None:
    got = classify(silero, line(silence(1.0), beep(1800.0, 250)))
    d = got.decision
    assert (d.result, d.reason) == ("machine", "beep"), d
    assert d.evidence.beep_end_ms is not None and abs(d.evidence.beep_end_ms - 1250) <= 40
    assert got.cue is not None and got.cue.after == "beep"
    assert got.outputs == [d, got.cue]


def test_a_short_greeting_then_a_beep_is_a_machine(silero: SileroModel) -> None:
    """No transcript: the greeting is too short for a machine's, but the tone that starts
    before `human_silence_ms` has passed holds the decision until it ends."""
    greeting = espeak("Hey, it's Sam, leave a message.", words_per_minute=175)
    assert len(greeting) < SAMPLE_RATE * 2.5  # shorter than `machine_speech_ms`, silences too
    got = classify(silero, line(silence(0.3), greeting, silence(0.5), beep(1000.0, 400)))
    d = got.decision  # the beep ends just before the deadline or after it (still playing)
    assert d.result == "machine" and d.reason in {"beep", "deadline"}, d
    assert d.decided_ms <= 3500
    assert got.cue is not None and got.cue.after == "beep"


def test_a_tone_playing_at_the_deadline_is_a_machine() -> None:
    detector = AnsweringMachineDetector(AmdSettings(), answered_at=0.0)
    t = np.arange(320) / SAMPLE_RATE
    out: list[object] = []
    for i in range(250):  # silence, a 1000 Hz tone from 3.0 s to 4.0 s, silence
        at = i * 0.02
        tone = 150 <= i < 200
        samples = (8000 * np.sin(2 * np.pi * 1000 * (t + at))).astype(np.int16)
        out += detector.feed(samples if tone else np.zeros(320, np.int16), at, speech=False)
    d, cue = out
    assert isinstance(d, AmdDecision) and isinstance(cue, VoicemailCue)
    assert (d.result, d.reason, d.decided_ms) == ("machine", "deadline", 3500.0)
    assert (cue.after, cue.at_ms) == ("beep", 4000.0)


def test_a_greeting_starting_late_is_a_machine_at_the_deadline(silero: SileroModel) -> None:
    d = classify(silero, line(silence(1.6), espeak(GREETING))).decision
    assert (d.result, d.reason, d.decided_ms) == ("machine", "deadline", 3500.0), d


def test_a_late_hello_is_a_person_at_the_deadline(silero: SileroModel) -> None:
    d = classify(silero, line(silence(2.9), espeak("Hello?"), silence(2.0))).decision
    assert d.result == "human" and d.decided_ms <= 3500 + 800, d


def test_clicks_are_not_a_hello() -> None:
    detector = AnsweringMachineDetector(AmdSettings(), answered_at=0.0)
    frame = np.zeros(320, dtype=np.int16)
    out: list[object] = []
    for i in range(200):  # 4 s: a 40 ms click at 0.5 s and at 1.5 s
        at = i * 0.02
        out += detector.feed(frame, at, speech=i in (25, 26, 75, 76))
    (d,) = out
    assert isinstance(d, AmdDecision)
    assert (d.result, d.reason, d.decided_ms) == ("unknown", "silence", 3500.0)


def test_the_deadline_passes_without_frames_and_the_greeting_bound_ends_the_wait() -> None:
    settings = AmdSettings(max_greeting_s=10.0)
    detector = AnsweringMachineDetector(settings, answered_at=50.0)
    assert detector.tick(53.0) == ()
    (d,) = detector.tick(53.5)
    assert isinstance(d, AmdDecision) and d.result == "unknown"
    detector = AnsweringMachineDetector(settings, answered_at=50.0)
    frame = np.zeros(320, dtype=np.int16)
    for i in range(495):  # 9.9 s of a greeting that never stops
        detector.feed(frame, 50.0 + i * 0.02, speech=True)
    assert detector.decision is not None and detector.decision.result == "machine"
    assert detector.cue is None
    (cue,) = detector.tick(60.0)
    assert isinstance(cue, VoicemailCue) and (cue.after, cue.at_ms) == ("timeout", 10000.0)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("We can't take your call right now.", "cannot take your call"),
        ("I CAN NOT take your call", "cannot take your call"),
        ("Please leave a message after the tone.", "leave a message"),
        ("You've reached the voice-mail of John.", "voice mail"),
        ("He\u2019s not available.", "not available"),
        ("Hello? Who is this?", ""),
        ("Yes, speaking.", ""),
        ("unavailable", "unavailable"),
    ],
)
def test_greeting_phrases(text: str, phrase: str) -> None:
    assert greeting_phrase(text) == phrase


LONG_ANSWER = "Hello, yes, this is Karen speaking, who is calling please?"


def test_a_long_answer_with_a_persons_words_is_human(silero: SileroModel) -> None:
    """Over `machine_speech_ms` of speech without a pause would be a greeting; "speaking" and
    "who is calling" heard in it make it a person's, decided when they stop (or at the
    deadline if they are still talking then). One kind of a person's words (an answer
    phrase) heard: not enough to decide at once (`test_amd_turns.py`)."""
    audio = line(silence(0.3), espeak(LONG_ANSWER))
    assert len(audio) / SAMPLE_RATE > 3.3  # still talking at the 3.5 s deadline
    as_machine = classify(silero, audio).decision
    assert as_machine.result == "machine"
    got = classify(silero, audio, transcript=(2.0, "Hello, this is Karen speaking"))
    d = got.decision
    assert d.result == "human" and d.reason in {"short_greeting", "deadline"}, d
    assert d.decided_ms <= 3500 and d.evidence.answer == "speaking"
    assert d.evidence.greeting_ms >= 2100 and got.cue is None  # machine-long at the deadline
    print(f"long answer: human at {d.decided_ms} ms ({d.reason})")


def test_the_greetings_words_win_over_an_answer_phrase(silero: SileroModel) -> None:
    text = "You're speaking to the voicemail of Dan, leave a message after the tone."
    audio = line(silence(0.3), espeak(text))
    d = classify(silero, audio, transcript=(1.5, "You're speaking to the voicemail of")).decision
    assert (d.result, d.reason) == ("machine", "greeting_phrase")
    assert (d.evidence.phrase, d.evidence.answer) == ("voicemail", "speaking")


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Hello? Who's calling?", "who's calling"),
        ("Yes, speaking.", "speaking"),
        ("WHO IS THIS", "who is this"),
        ("Hi, how can I help?", "how can i help"),
        ("Please leave a message after the tone.", ""),
        ("I'm not available, speak after the beep", ""),
    ],
)
def test_answer_phrases(text: str, phrase: str) -> None:
    assert answer_phrase(text) == phrase


def test_the_voicemail_message_fills_in_known_variables_only() -> None:
    text = "Hi $name, this is Bright Smile calling about ${day}. Cost: $5."
    assert render_voicemail(text, {"name": "Ann"}) == (
        "Hi Ann, this is Bright Smile calling about ${day}. Cost: $5."
    )
