"""Short speech over the agent's reply: a backchannel ("mhm", "okay", "I see") lets the reply
go on, but words that say something ("what about Aetna", said faintly or in pieces so that it
stayed under the barge-in threshold) are a turn: the reply stops and the line is answered."""

from __future__ import annotations

import pytest

from agents.fake import ScriptedAgent
from pipeline.session import State
from pipeline.turn import is_backchannel
from tests.pipeline.test_session import Harness

STORY = " ".join(f"word{i}" for i in range(30))  # 3 s of fake speech


@pytest.mark.parametrize(
    "said",
    ["mhm", "okay", "Uh-huh.", "Mm-hmm.", "Mm-hm.", "Mmhmm", "I see", "got it", "yeah sure", ""],
)
def test_acknowledgements_are_backchannels(said: str) -> None:
    assert is_backchannel(said)


@pytest.mark.parametrize(
    "said", ["what about Aetna", "Next Tuesday, please.", "no", "Mm-mm.", "okay but wait", "stop"]
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
