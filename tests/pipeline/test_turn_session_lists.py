"""A line that may be a list, in a call (virtual clock, fake engines): after the agent asked
"What day would you like to come in?", "I could do Monday." at a 500 ms pause is not the end of
the turn: the reply started at the pause is generated but its audio is held through the list
window (`list_silence_ms`), and when the caller goes on ("... Wednesday, or Friday.") it is
dropped unheard. After a yes/no question the same word ends the turn at the short window."""

from __future__ import annotations

import pytest

from agents.base import UserSaid
from agents.fake import ScriptedAgent
from pipeline.events import TurnMetrics
from pipeline.fakes import FakeTts, RecordedTurnModel
from pipeline.session import State
from tests.pipeline.test_session import Harness

DAY = "What day would you like to come in?"
COMPLETE = 0.963  # the real model's "complete" (test_session_turn_model.py)


async def test_a_held_reply_to_a_list_s_first_item_is_dropped_unheard() -> None:
    agent = ScriptedAgent(
        greeting=DAY,
        replies={"friday": "Friday it is.", "monday": "Monday it is."},
        speculates=True,
    )
    h = Harness(["I could do Monday.", "I could do Monday, Wednesday, or Friday."], agent)
    h.engines.turn = model = RecordedTurnModel([COMPLETE])
    tts = h.engines.tts
    assert isinstance(tts, FakeTts)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)  # "I could do Monday," ...
    sent = len(h.transport.sink.frames)
    await h.silence(0.5)  # ... a 500 ms pause: the reply is generated, not played
    assert tts.texts[-1] == "Monday it is."
    assert s.state == State.USER_SPEAKING
    assert len(h.transport.sink.frames) == sent  # not a frame of it went out
    assert len(model.asked) == 1  # (and the model said "complete")
    await h.say(1, 1.2)  # ... "Wednesday, or Friday."
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert [t.text for t in h.finals("agent")] == [DAY, "Friday it is."]
    assert [t.text for t in h.finals("user")] == ["I could do Monday, Wednesday, or Friday."]
    said = [i.text for i in agent.inputs if isinstance(i, UserSaid)]
    assert said[-1] == "I could do Monday, Wednesday, or Friday."
    await h.finish()


async def endpoint_window(greeting: str, line: str) -> float:
    agent = ScriptedAgent(greeting=greeting, replies={"": "Sure."}, speculates=True)
    h = Harness([line], agent)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.AGENT_SPEAKING)
    await h.finish()
    [metrics] = [e for e in h.events if isinstance(e, TurnMetrics)]
    return float(metrics.marks["endpoint"] - metrics.marks["speech_end"])


async def test_after_a_choice_question_one_day_ends_at_the_list_window() -> None:
    """The price of waiting for a list: a one-word answer to a choice question waits
    `list_silence_ms` (its reply is ready by then, held)."""
    assert await endpoint_window(DAY, "Monday.") == pytest.approx(1.0, abs=0.041)


async def test_after_a_yes_no_question_one_day_ends_at_the_short_window() -> None:
    window = await endpoint_window("Shall I book you for Monday?", "Monday.")
    assert window == pytest.approx(0.4, abs=0.041)
