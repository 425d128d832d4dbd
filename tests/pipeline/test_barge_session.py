"""Speech over the agent's reply on the virtual clock, with what Whisper tiny wrote for the
bench's turn-taking lines (issue 16) replayed: a hum whose partials are stray words ("M A
can.") or that comes over the first words of the reply to a quick endpoint is a backchannel
(the reply goes on); words that say something stop the reply, and over the reply's first
words they are the rest of the early turn, transcribed whole."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from agents.fake import ScriptedAgent
from pipeline.fakes import FakeStt
from pipeline.session import CallSession, State
from tests.pipeline.test_session import Harness

STORY = " ".join(f"word{i}" for i in range(40))  # 4 s of fake speech


class RecordedStt(FakeStt):
    """`FakeStt` whose partials of line k replay `partials[k]` in order (the last repeats);
    finals (and the speculative final at a pause) are the line itself."""

    def __init__(self, lines: list[str], partials: dict[int, list[str]]) -> None:
        super().__init__(lines)
        self.partials = {k: list(v) for k, v in partials.items()}

    async def transcribe(
        self, audio: npt.NDArray[np.int16], *, final: bool, prefix: str = "", context: str = ""
    ) -> str | None:
        text = await super().transcribe(audio, final=final, prefix=prefix, context=context)
        k = self.lines.index(text) if text in self.lines else -1
        if final or k not in self.partials:
            return text
        replay = self.partials[k]
        return replay.pop(0) if len(replay) > 1 else replay[0]


def harness(lines: list[str], partials: dict[int, list[str]] | None = None) -> Harness:
    agent = ScriptedAgent(
        greeting="Hi.", replies={"hours": STORY, "metlife": STORY}, default="Sure, what day?"
    )
    h = Harness(lines, agent, backchannel_ms=600, backchannel_max_ms=1500)
    h.engines.stt = RecordedStt(lines, partials or {})
    return h


async def over_the_reply(h: Harness, seconds: float, after_s: float) -> CallSession:
    """Line 0, then line 1 for `seconds`, `after_s` into the agent's reply to it."""
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(after_s)
    await h.say(1, seconds)
    return s


async def test_a_hum_whose_partial_is_a_stray_word_lets_the_reply_go_on() -> None:
    # espeak-ng's "Mhm." 2 s into the hours: partials '', 'M A can.', 'Em'; final 'M A M'
    h = harness(["What are your hours?", "M A M"], {1: ["", "M A can.", "Em"]})
    s = await over_the_reply(h, 0.7, after_s=2.0)
    assert s.state == State.AGENT_SPEAKING  # held paused past the threshold, not stopped
    await h.until(State.LISTENING)
    assert [t.text for t in h.finals("user")] == ["What are your hours?"]
    assert h.finals("agent")[-1].text == STORY
    assert not any(t.interrupted for t in h.finals("agent"))
    await h.finish()


@pytest.mark.parametrize("heard", ["Mm-hmm.", "N M M"])
async def test_a_mhm_over_the_first_words_of_a_quick_reply_is_not_a_continuation(
    heard: str,
) -> None:
    # Piper's "Mm-hmm." 0.8 s into the reply to "Do you accept MetLife?": within the
    # continuation window of its endpoint, with little of the reply heard ('N M M': Whisper)
    h = harness(["Do you accept MetLife?", heard], {1: ["", "N."]})
    s = await over_the_reply(h, 0.45, after_s=0.1)
    await h.until(State.LISTENING)
    assert [m.text for m in s.history if m.role == "user"] == ["Do you accept MetLife?"]
    assert [t.text for t in h.finals("agent")] == ["Hi.", STORY]
    assert not any(t.interrupted for t in h.finals("agent"))
    await h.finish()


async def test_words_over_the_first_words_of_a_quick_reply_continue_the_turn() -> None:
    h = harness(["Hi.", "Hi, I'd like to book a cleaning."])
    before = 0
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)  # "Hi," ... answered at the comma pause
    await h.until(State.AGENT_SPEAKING)
    before = len(h.transport.sink.frames)
    await h.say(1, 1.2)  # ... "I'd like to book a cleaning."
    assert len(h.transport.sink.frames) - before <= 8  # paused from the speech's onset
    await h.until(State.LISTENING)
    assert [m.text for m in s.history if m.role == "user"] == ["Hi, I'd like to book a cleaning."]
    assert [m.text for m in s.history if m.role == "assistant"] == ["Hi.", "Sure, what day?"]
    assert [t.turn for t in h.finals("user")] == [1, 1]  # the early final superseded
    await h.finish()


async def test_short_words_over_the_first_words_of_a_quick_reply_continue_it_too() -> None:
    # under the barge-in threshold: the final transcript decides, and the turn is taken back
    h = harness(["Hi.", "Hi, what about Aetna?"])
    s = await over_the_reply(h, 0.4, after_s=0.0)
    await h.until(State.LISTENING)
    assert [m.text for m in s.history if m.role == "user"] == ["Hi, what about Aetna?"]
    assert [m.text for m in s.history if m.role == "assistant"] == ["Hi.", "Sure, what day?"]
    await h.finish()


async def test_a_barge_in_whose_first_partial_is_one_word_stops_at_the_next() -> None:
    h = harness(
        ["What are your hours?", "Sorry, do you take Cigna?"],
        {1: ["", "Sorry,", "Sorry, do you take"]},
    )
    s = await over_the_reply(h, 0.7, after_s=2.0)
    assert s.state == State.AGENT_SPEAKING  # 'Sorry,' alone: not yet
    await h.say(1, 0.2)  # the partial at 0.8 s: two words that say something
    assert s.state == State.USER_SPEAKING
    story = next(t for t in h.finals("agent") if t.interrupted)
    assert len(story.text.split()) < len(STORY.split())
    await h.finish()


async def test_one_word_two_partials_agree_on_is_a_barge_in() -> None:
    h = harness(["What are your hours?", "Actually."], {1: ["", "Actually.", "Actually."]})
    s = await over_the_reply(h, 0.9, after_s=2.0)
    assert s.state == State.USER_SPEAKING  # before the 1.5 s maximum
    assert any(t.interrupted for t in h.finals("agent"))
    await h.finish()
