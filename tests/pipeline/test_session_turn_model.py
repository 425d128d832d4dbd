"""The audio turn model in a call (virtual clock, fake engines, recorded verdicts): a confident
"complete" at the pause brings the endpoint forward to `model_complete_ms`, "incomplete" holds
it to the longest window, and a node without the model keeps the transcript's window."""

from __future__ import annotations

import pytest

from agents.fake import ScriptedAgent
from pipeline.events import TurnMetrics
from pipeline.fakes import RecordedTurnModel
from pipeline.session import State
from tests.pipeline.test_session import Harness

# Verdicts the real model gave at these lines' pauses (tests/pipeline/test_turn_model.py's
# espeak-ng lines): "I need to cancel my appointment." and "My number is five five five, two one".
COMPLETE, INCOMPLETE = 0.963, 0.008


async def endpoint_window(
    verdicts: list[float] | None, line: str, *, asked: bool = True, **turn: object
) -> float:
    agent = ScriptedAgent(greeting="Hello.", replies={"": "Sure."})
    h = Harness([line], agent, **turn)
    model = RecordedTurnModel(verdicts) if verdicts is not None else None
    h.engines.turn = model
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 1.0)
    await h.until(State.AGENT_SPEAKING)
    await h.finish()
    if model is not None and asked:
        assert model.asked and model.asked[0] >= 16_000  # the utterance's audio, a second of it
    elif model is not None:
        assert model.asked == []
    metrics = [e for e in h.events if isinstance(e, TurnMetrics)]
    assert len(metrics) == 1
    marks = metrics[0].marks
    return float(marks["endpoint"] - marks["speech_end"])


async def test_a_confident_complete_brings_the_endpoint_forward() -> None:
    window = await endpoint_window([COMPLETE], "I need to cancel my appointment")
    assert window == pytest.approx(0.2, abs=0.041)


async def test_without_the_model_the_transcript_window_holds() -> None:
    window = await endpoint_window(None, "I need to cancel my appointment")
    assert window == pytest.approx(0.6, abs=0.041)  # no final punctuation: the neutral window


async def test_the_agent_can_turn_the_model_off() -> None:
    line = "I need to cancel my appointment"
    window = await endpoint_window([COMPLETE], line, asked=False, audio_model=False)
    assert window == pytest.approx(0.6, abs=0.041)


async def test_a_confident_incomplete_waits_the_longest_window() -> None:
    window = await endpoint_window([INCOMPLETE], "I need to cancel my appointment.")
    assert window == pytest.approx(1.5, abs=0.041)  # complete text, but the voice goes on
