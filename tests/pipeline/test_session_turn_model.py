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
    window = await endpoint_window([INCOMPLETE], "I need to cancel my appointment")
    assert window == pytest.approx(1.5, abs=0.041)  # no end punctuation: the voice decides


async def test_a_line_with_a_comma_over_the_agent_is_not_cut_into_backchannels() -> None:
    """Speech over the agent's reply ("Wait, what about Aetna?") in two short pieces, each
    under the backchannel threshold: the model's quick "complete" after "Wait," must not end
    that piece as a backchannel (and then the next): over the agent the usual windows apply,
    the pieces make one line, long enough to barge in."""
    reply = " ".join(f"w{i}" for i in range(40))  # 4 s of fake speech
    agent = ScriptedAgent(greeting="Hello.", replies={"first": reply, "second": "Got it."})
    h = Harness(["first line", "second line"], agent)
    model = RecordedTurnModel([COMPLETE])
    h.engines.turn = model
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.AGENT_SPEAKING)
    asked = len(model.asked)
    await h.silence(1.0)
    await h.say(1, 0.4)  # "Wait,"
    await h.silence(0.3)
    await h.say(1, 0.45)  # "what about Aetna?"
    await h.until(State.AGENT_SPEAKING)
    await h.finish()
    users = [t.text for t in h.finals("user")]
    assert users == ["first line", "second line"]
    # not asked at the comma (over the agent), only at the end of the line once it barged in,
    # with both pieces' audio
    assert len(model.asked) == asked + 1
    assert model.asked[-1] >= int(0.85 * 16_000)
