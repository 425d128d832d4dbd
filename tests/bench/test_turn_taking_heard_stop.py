"""The stop a caller hears when they barge in: from their first voiced sample to the agent's
last frame before the reply went quiet (the session pauses playout at speech onset, well
before it decides the barge-in), read from when each agent frame went out."""

from __future__ import annotations

import numpy as np

from bench.scenario import SpokenLine
from bench.turn_taking import Timeline, classify, heard_stop_ms


def frames(start: float, end: float) -> list[float]:
    """An agent frame every 20 ms from `start` up to `end`."""
    return [round(start + 0.02 * i, 3) for i in range(round((end - start) / 0.02))]


def test_the_last_frame_before_the_first_gap_after_the_line_started() -> None:
    out = frames(30.0, 31.2) + frames(33.3, 34.0)  # quiet from 31.2 (paused) to the answer
    assert heard_stop_ms(out, 31.05) == 150.0  # the frame sent at 31.18 ends at 31.2


def test_no_gap_or_no_frame_after_the_start_reads_none() -> None:
    assert heard_stop_ms(frames(30.0, 32.0), 31.0) is None  # it talked on through
    assert heard_stop_ms(frames(30.0, 31.0), 31.5) is None  # nothing went out after


def test_a_short_hiccup_is_not_a_stop() -> None:
    out = frames(30.0, 31.1) + frames(31.14, 31.5) + frames(33.0, 33.5)  # a 40 ms hole first
    assert heard_stop_ms(out, 31.0) == 500.0


def test_classify_reports_it_beside_the_session_stop() -> None:
    line = SpokenLine(
        samples=np.zeros(0, np.int16),
        text="Sorry, do you take Cigna?",
        barge_in_ms=1500,
        category="barge-in",
        voice="piper",
        voiced=(0.05, 1.4),
    )
    timeline = Timeline(
        states=[
            (0.0, "thinking"),
            (0.5, "agent_speaking"),
            (3.0, "listening"),
            (29.5, "thinking"),
            (30.0, "agent_speaking"),
            (31.75, "user_speaking"),
            (32.8, "thinking"),
            (33.3, "agent_speaking"),
        ],  # fmt: skip
        replies=[],
        spans=[(31.0, 32.5)],
        agent_frames=frames(30.0, 31.2) + frames(33.3, 34.0),
    )
    (o,) = classify(timeline, [line], scenario="s", voice="piper")
    assert (o.stopped, o.stop_ms, o.heard_stop_ms) == (True, 700.0, 150.0)


def test_a_pause_that_began_just_before_the_first_voiced_sample_reads_zero() -> None:
    # The VAD fired on the frame holding the line's first voiced sample, a few ms before that
    # sample: no agent frame went out after the start until the answer, whose first gap (the
    # caller's next line 0.8 s into it) must not be read as the stop (issue 16's 2955 ms p95).
    out = frames(30.0, 31.04) + frames(33.0, 33.8) + frames(34.2, 35.0)
    assert heard_stop_ms(out, 31.05) == 0.0
    assert heard_stop_ms(out, 31.03) == 10.0  # the frame sent at 31.02 ends at 31.04


def test_a_short_hole_across_the_start_is_not_a_stop() -> None:
    out = frames(30.0, 31.0) + frames(31.03, 32.0) + frames(33.0, 33.5)  # 30 ms, then on
    assert heard_stop_ms(out, 31.01) == 980.0  # the frame sent at 31.97 ends at 31.99
