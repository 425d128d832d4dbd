"""The audio turn model's verdict in the turn detector (sans-IO, frame times as the clock): a
confident "complete" ends the turn after `model_complete_ms`, a confident "incomplete" waits the
longest window, an unfinished transcript keeps the long window whatever the model says, and a
verdict for a pause that is over is dropped."""

from __future__ import annotations

from agents.spec import TurnSettings
from pipeline.turn import SpeechPaused, TurnDetector, TurnEnded, TurnEvent

F = 0.02


class Frames:
    """Feeds frames of a given speech probability and keeps the time and every event."""

    def __init__(self, det: TurnDetector) -> None:
        self.det = det
        self.t = 0.0
        self.events: list[TurnEvent] = []

    def feed(self, prob: float, seconds: float) -> list[TurnEvent]:
        out: list[TurnEvent] = []
        for _ in range(round(seconds / F)):
            self.t = round(self.t + F, 6)
            out.extend(self.det.feed(prob, self.t))
        self.events.extend(out)
        return out

    def until_end(self, limit_s: float = 5.0) -> TurnEnded | None:
        for _ in range(round(limit_s / F)):
            for ev in self.feed(0.0, F):
                if isinstance(ev, TurnEnded):
                    return ev
        return None

    def pause(self) -> SpeechPaused:
        """Silence until the detector reports the pause."""
        for _ in range(50):
            for ev in self.feed(0.0, F):
                if isinstance(ev, SpeechPaused):
                    return ev
        raise AssertionError("no pause reported")


def detector(**kw: object) -> TurnDetector:
    base: dict[str, object] = {
        "silence_ms": 600,
        "complete_silence_ms": 400,
        "incomplete_silence_ms": 1500,
        "model_complete_ms": 200,
    }
    base.update(kw)
    return TurnDetector(TurnSettings(**base))  # type: ignore[arg-type]


def test_a_confident_complete_ends_the_turn_after_the_short_window() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    paused = frames.pause()
    frames.det.update_transcript("I need to cancel my appointment")  # the pause's decode
    assert frames.det.update_model(0.92, paused.speech_end)
    ended = frames.until_end()
    assert ended is not None
    assert round(ended.decided_at - ended.speech_end, 3) == 0.2
    assert ended.window_s == 0.2


def test_without_a_verdict_the_transcript_window_holds() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    frames.det.update_transcript("I'd like to come in next Tuesday")  # (neutral: 600 ms)
    ended = frames.until_end()
    assert ended is not None and round(ended.decided_at - ended.speech_end, 3) == 0.6


def test_a_confident_incomplete_waits_the_longest_window() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    paused = frames.pause()
    frames.det.update_transcript("I'd like to book an appointment")  # no end punctuation
    assert frames.det.update_model(0.05, paused.speech_end)
    ended = frames.until_end()
    assert ended is not None and round(ended.decided_at - ended.speech_end, 3) == 1.5


def test_a_sentence_the_transcript_reads_as_whole_is_not_held_by_the_model() -> None:
    """Measured on the wire bench (Piper's caller voice over G.711), the model read some whole,
    punctuated sentences as unfinished: they waited 1.5 s. Its "incomplete" only holds a line
    the transcript cannot judge."""
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    paused = frames.pause()
    frames.det.update_transcript("I'd like to book an appointment.")
    assert frames.det.update_model(0.05, paused.speech_end)
    ended = frames.until_end()
    assert ended is not None and round(ended.decided_at - ended.speech_end, 3) == 0.4


def test_an_unsure_verdict_leaves_the_transcript_to_decide() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    paused = frames.pause()
    frames.det.update_transcript("I'd like to book an appointment.")
    assert frames.det.update_model(0.5, paused.speech_end)
    ended = frames.until_end()
    assert ended is not None and round(ended.decided_at - ended.speech_end, 3) == 0.4


def test_an_unfinished_number_keeps_the_long_window_whatever_the_model_says() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    frames.det.update_transcript("my number is five five five two")
    paused = frames.pause()
    assert frames.det.update_model(0.97, paused.speech_end)
    ended = frames.until_end()
    assert ended is not None and round(ended.decided_at - ended.speech_end, 3) == 1.5


def test_a_verdict_that_comes_after_the_caller_went_on_is_dropped() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    frames.det.update_transcript("I'd like to come in next Tuesday")  # (neutral: 600 ms)
    paused = frames.pause()
    frames.feed(0.9, 0.4)  # the caller goes on
    assert not frames.det.update_model(0.95, paused.speech_end)
    assert frames.det.model_probability is None
    ended = frames.until_end()
    assert ended is not None and round(ended.decided_at - ended.speech_end, 3) == 0.6


def test_a_verdict_from_a_pause_before_speech_resumed_does_not_carry_over() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    frames.det.update_transcript("I'd like to come in next Tuesday")  # (neutral: 600 ms)
    first = frames.pause()
    assert frames.det.update_model(0.95, first.speech_end)
    frames.feed(0.9, 0.3)  # resumed before the short window ran out
    assert frames.det.model_probability is None
    ended = frames.until_end()
    assert ended is not None and round(ended.decided_at - ended.speech_end, 3) == 0.6


def test_a_verdict_arriving_late_ends_the_turn_at_the_next_frame() -> None:
    frames = Frames(detector())
    frames.feed(0.9, 1.0)
    paused = frames.pause()
    frames.feed(0.0, 0.2)  # the model took a while: 0.36 s of silence so far
    frames.det.update_transcript("I need to cancel my appointment")
    assert frames.det.update_model(0.9, paused.speech_end)
    ended = frames.until_end()
    assert ended is not None
    assert round(ended.decided_at - ended.speech_end, 3) == round(frames.t - paused.speech_end, 3)
    assert round(ended.decided_at - ended.speech_end, 3) == 0.38


def test_the_agent_settings_bound_the_short_window() -> None:
    frames = Frames(detector(complete_silence_ms=150, model_complete_ms=300))
    frames.feed(0.9, 1.0)
    paused = frames.pause()
    frames.det.update_transcript("I need to cancel my appointment")
    assert frames.det.update_model(0.9, paused.speech_end)
    ended = frames.until_end()
    # the pause is reported at 0.16 s; the verdict makes the window 0.15 s (the agent's
    # complete window, not the model's 0.3 s): the next frame ends the turn
    assert ended is not None and ended.window_s == 0.15
    assert round(ended.decided_at - ended.speech_end, 3) == 0.18


def test_a_confident_complete_waits_for_the_pause_s_transcript() -> None:
    """ "Great, thank you": at the comma the model may say "complete" before any words are
    in; without a transcript of the pause the window for no words yet holds (the list window;
    and once "Great," is in, its comma keeps the long one)."""
    frames = Frames(detector())
    frames.feed(0.9, 0.4)
    paused = frames.pause()
    assert frames.det.update_model(0.95, paused.speech_end)
    frames.feed(0.0, 0.2)  # 0.36 s of silence: past the model's window, no words yet
    assert frames.det.window_s() == 1.0
    frames.det.update_transcript("Great,")
    ended = frames.until_end()
    assert ended is not None and ended.window_s == 1.5
