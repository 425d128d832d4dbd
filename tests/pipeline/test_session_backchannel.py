"""Short speech over the agent's reply: a backchannel ("mhm", "okay", "I see") lets the reply
go on, but words that say something ("what about Aetna", said faintly or in pieces so that it
stayed under the barge-in threshold) are a turn: the reply stops and the line is answered."""

from __future__ import annotations

import asyncio

import pytest

from agents.fake import ScriptedAgent
from pipeline.session import State
from pipeline.turn import is_backchannel
from tests.pipeline.test_session import Harness

STORY = " ".join(f"word{i}" for i in range(30))  # 3 s of fake speech


@pytest.mark.parametrize(
    "said",
    [
        "mhm",
        "okay",
        "Uh-huh.",
        "Mm-hmm.",
        "Mm-hm.",
        "Mmhmm",
        "I see",
        "got it",
        "yeah sure",
        "",
        "M H M.",  # Whisper tiny's spelling of Piper's "Mhm." through G.711, now and then
        "M-H-M",
    ],
)
def test_acknowledgements_are_backchannels(said: str) -> None:
    assert is_backchannel(said)


@pytest.mark.parametrize(
    "said",
    ["what about Aetna", "Next Tuesday, please.", "no", "Mm-mm.", "okay but wait", "stop", "B C"],
)
def test_anything_else_is_not(said: str) -> None:
    assert not is_backchannel(said)


async def test_a_short_line_that_says_something_is_answered() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY, "aetna": "Yes, we take Aetna."})
    h = Harness(["tell me a story", "what about Aetna"], agent, backchannel_ms=600)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(0.5)
    await h.say(1, 0.4)  # under the barge-in threshold
    await h.until(State.LISTENING)
    assert [t.text for t in h.finals("user")] == ["tell me a story", "what about Aetna"]
    agent_turns = h.finals("agent")
    assert agent_turns[-1].text == "Yes, we take Aetna."
    story = next(t for t in agent_turns if t.text.startswith("word") or t.interrupted)
    assert story.interrupted  # the story stopped for it; the history keeps what was heard
    assert len(story.text.split()) < len(STORY.split())
    assert [m.role for m in s.history][-2:] == ["user", "assistant"]
    await h.finish()


async def test_okay_over_the_reply_lets_it_go_on() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY})
    h = Harness(["tell me a story", "okay"], agent, backchannel_ms=600)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(0.5)
    await h.say(1, 0.4)
    await h.until(State.LISTENING)
    assert h.finals("agent")[-1].text == STORY
    assert [t.text for t in h.finals("user")] == ["tell me a story"]
    await h.finish()


async def _say_over_a_story(h: Harness, seconds: float) -> int:
    """Start a story, then line 1 over it for `seconds`; returns the playout frames that went
    out while the caller spoke."""
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(0.5)
    before = len(h.transport.sink.frames)
    await h.say(1, seconds)
    return len(h.transport.sink.frames) - before


async def test_a_long_mhm_past_the_threshold_is_still_a_backchannel() -> None:
    # 1.0 s of "mhm" is over the 600 ms threshold: its words hold the agent paused, not stop it
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY})
    h = Harness(["tell me a story", "Mm-hmm."], agent, backchannel_ms=600, backchannel_max_ms=1500)
    sent = await _say_over_a_story(h, 1.0)
    assert sent <= 8  # paused from its onset, as for any speech over the agent
    await h.until(State.LISTENING)
    assert not any(t.interrupted for t in h.finals("agent"))
    assert h.finals("agent")[-1].text == STORY
    assert [t.text for t in h.finals("user")] == ["tell me a story"]
    await h.finish()


async def test_acknowledging_words_that_go_on_past_the_maximum_barge_in() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY})
    h = Harness(["tell me a story", "okay"], agent, backchannel_ms=600, backchannel_max_ms=1200)
    await _say_over_a_story(h, 0.0)
    await h.say(1, 1.0)
    assert h.session is not None and h.session.state == State.AGENT_SPEAKING  # held, paused
    await h.say(1, 0.4)  # 1.4 s in all: past the maximum
    assert h.session.state == State.USER_SPEAKING
    story = next(t for t in h.finals("agent") if t.interrupted)
    assert len(story.text.split()) < len(STORY.split())
    await h.finish()


async def test_words_that_say_something_barge_in_at_the_threshold() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY})
    h = Harness(["tell me a story", "what about Aetna"], agent, backchannel_ms=600)
    await _say_over_a_story(h, 0.0)
    await h.say(1, 0.5)
    assert h.session is not None and h.session.state == State.AGENT_SPEAKING
    await h.say(1, 0.2)  # 0.7 s: past the threshold, and the partial says something
    assert h.session.state == State.USER_SPEAKING
    assert any(t.interrupted for t in h.finals("agent"))
    await h.finish()


async def test_a_late_partial_barges_in_when_it_comes() -> None:
    # the recogniser is behind: at the threshold the words are not in, so the agent stays
    # paused; the partial that then says something barges in at once
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY})
    h = Harness(["tell me a story", "what about Aetna"], agent, backchannel_ms=600)
    await _say_over_a_story(h, 0.0)
    gate = asyncio.Event()
    h.engines.stt.gate = gate  # type: ignore[attr-defined]
    await h.say(1, 0.9)
    assert h.session is not None and h.session.state == State.AGENT_SPEAKING
    gate.set()
    await h.clock.advance(0)
    await h.say(1, 0.04)
    assert h.session.state == State.USER_SPEAKING
    assert any(t.interrupted for t in h.finals("agent"))
    await h.finish()
