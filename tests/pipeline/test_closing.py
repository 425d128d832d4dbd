"""Hang-ups and transfers the caller can stop: the closing line, then a grace period in which
caller words cancel the action (virtual clock, fake engines)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import httpx
from prometheus_client import REGISTRY

from agents.base import (
    AgentContext,
    AgentInput,
    AgentOutput,
    EndCall,
    Message,
    TextChunk,
    UserSaid,
)
from agents.catalog import embedded_specs
from agents.fake import ScriptedAgent
from agents.flow.agent import FlowAgent
from pipeline.closing import ClosingGrace
from pipeline.session import State
from pipeline.turn_taking import CONTINUATION_S
from tests.pipeline.test_session import Harness


def cancelled(action: str) -> float:
    value = REGISTRY.get_sample_value(
        "voicenode_closing_actions_cancelled_total", {"action": action}
    )
    assert value is not None  # the labels exist from the start
    return value


async def until_closing_line_played(h: Harness, limit_s: float = 10.0) -> None:
    """Until the agent asked to end or transfer the call and its line has been played."""
    s = h.session
    assert s is not None
    for _ in range(round(limit_s / 0.02)):
        if s._guard.closing.pending and s._playout.speaking is False:
            return
        await h.silence(0.02)
    raise AssertionError("no closing line was played")


# ---- the sans-IO core ----


def test_grace_waits_for_the_line_then_the_period() -> None:
    grace = ClosingGrace(1.5)
    assert grace.wake_at(0.0) == float("inf")  # the line is still playing
    grace.line_played(10.0)
    assert grace.wake_at(10.0) == 11.5
    assert grace.wake_at(11.5) is None


def test_grace_holds_while_the_caller_speaks() -> None:
    grace = ClosingGrace(1.5)
    grace.line_played(0.0)
    grace.caller_started()
    assert grace.wake_at(5.0) == float("inf")  # past the period, but the caller is speaking
    grace.caller_done()  # (no words: otherwise the reply, and the action, are cancelled)
    assert grace.wake_at(5.0) is None


def test_no_grace() -> None:
    grace = ClosingGrace(0.0)
    grace.line_played(3.0)
    assert grace.wake_at(3.0) is None


# ---- in the session ----


async def test_the_hangup_waits_out_the_grace_period() -> None:
    h = Harness(["ok bye"], ScriptedAgent(greeting="Hi."), closing_grace_ms=1500)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await until_closing_line_played(h)
    await h.silence(1.2)
    assert h.call.hung_up is None  # still within the grace period
    await h.silence(1.0)
    ended = await h.finish()
    assert ended.reason == "completed"
    assert h.call.hung_up == "completed"


async def test_the_closing_line_is_reported_before_the_grace_period_and_only_once() -> None:
    # A caller that hangs up during the grace period has still heard the goodbye: its words
    # are in the call's events and history as soon as it was played, not only after the hold.
    h = Harness(["ok bye"], ScriptedAgent(greeting="Hi."), closing_grace_ms=1500)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await until_closing_line_played(h)
    await h.silence(0.2)
    assert h.call.hung_up is None  # within the grace period...
    said = [t.text for t in h.finals("agent")]
    assert len(said) == 2 and said[-1]  # ...the greeting and the goodbye are reported
    await h.silence(2.0)
    assert (await h.finish()).reason == "completed"
    assert [t.text for t in h.finals("agent")] == said  # not again after the hang-up
    assert [m.text for m in s.history if m.role == "assistant"] == said


async def test_words_in_the_grace_period_cancel_the_hangup() -> None:
    before = cancelled("hangup")
    agent = ScriptedAgent(greeting="Hi.", replies={"one more": "Sure, go ahead."})
    h = Harness(["ok bye", "wait, one more thing"], agent, closing_grace_ms=3000)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await until_closing_line_played(h)
    await h.silence(CONTINUATION_S + 0.1)  # (sooner, the turn would be taken back as one)
    await h.say(1, 1.0)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.call.hung_up is None
    assert h.finals("agent")[-1].text == "Sure, go ahead."
    assert [m.text for m in s.history if m.role == "user"] == ["ok bye", "wait, one more thing"]
    assert cancelled("hangup") == before + 1
    await h.silence(3.0)  # nothing left over hangs up later
    assert h.call.hung_up is None
    assert (await h.finish()).reason == "hangup"


async def test_a_short_word_after_the_line_cancels_it_too() -> None:
    """Shorter than a barge-in ("wait"): it is still transcribed, and words cancel."""
    agent = ScriptedAgent(greeting="Hi.", replies={"wait": "Yes?"})
    h = Harness(["ok bye", "wait"], agent, closing_grace_ms=1500, backchannel_ms=600)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await until_closing_line_played(h)
    await h.silence(0.3)
    await h.say(1, 0.3)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.call.hung_up is None
    assert h.finals("agent")[-1].text == "Yes?"
    await h.finish()


class LongGoodbye(ScriptedAgent):
    """Says a long closing line before it ends the call."""

    LINE = " ".join(["Thanks for calling, have a great day and see you soon"] * 3)

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        if isinstance(event, UserSaid) and "bye" in event.text.lower():
            self.inputs.append(event)
            yield TextChunk(self.LINE)
            yield EndCall("completed")
            return
        async for out in super().respond(history, event):
            yield out


async def test_speaking_over_the_closing_line_cancels_the_hangup() -> None:
    before = cancelled("hangup")
    agent = LongGoodbye(greeting="Hi.", replies={"one more": "Sure, go ahead."})
    h = Harness(["ok bye", "wait, one more thing"], agent, backchannel_ms=400)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(0.5)  # a few words of the goodbye, then the caller talks over it
    await h.say(1, 1.0)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.call.hung_up is None
    interrupted = [t for t in h.finals("agent") if t.interrupted]
    assert len(interrupted) == 1 and LongGoodbye.LINE.startswith(interrupted[0].text)
    assert s.history[-1].text == "Sure, go ahead."
    assert cancelled("hangup") == before + 1
    await h.finish()


async def test_speech_without_words_lets_the_hangup_go_ahead() -> None:
    before = cancelled("hangup")
    h = Harness(["ok bye", ""], ScriptedAgent(greeting="Hi."), closing_grace_ms=3000)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await until_closing_line_played(h)
    await h.silence(CONTINUATION_S + 0.1)
    await h.say(1, 0.4)  # a cough: no words
    await h.silence(3.0)
    ended = await h.finish()
    assert ended.reason == "completed"
    assert cancelled("hangup") == before


async def test_a_transfer_is_cancelled_before_it_reaches_the_call() -> None:
    before = cancelled("transfer")
    agent = ScriptedAgent(greeting="Hi.", replies={"actually": "Okay, what else?"})
    h = Harness(["a human please", "no actually"], agent, closing_grace_ms=1500)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await until_closing_line_played(h)
    await h.silence(0.4)
    await h.say(1, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.call.transferred_to is None
    assert h.finals("agent")[-1].text == "Okay, what else?"
    assert cancelled("transfer") == before + 1
    assert (await h.finish()).reason == "hangup"


async def test_a_flow_agent_goes_on_from_before_its_goodbye() -> None:
    async with httpx.AsyncClient() as http:
        agent = FlowAgent(
            embedded_specs()["receptionist"],
            AgentContext(call_id="c1", tenant_id="t1", http=http),
        )
        h = Harness(["Goodbye.", "Wait, what are your hours?"], agent, closing_grace_ms=1500)
        await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 0.6)
        await until_closing_line_played(h)
        assert agent.ended
        await h.silence(0.3)
        await h.say(1, 1.0)
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        assert h.call.hung_up is None
        assert not agent.ended
        assert h.finals("agent")[-1].text.startswith("We're open Monday to Friday")
        assert agent.node == "anything_else"
        ended = await h.finish()
    assert ended.reason == "hangup"


async def test_keys_pressed_in_the_grace_period_cancel_the_hangup() -> None:
    before = cancelled("hangup")
    h = Harness(["ok bye"], ScriptedAgent(greeting="Hi."), closing_grace_ms=1500)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await until_closing_line_played(h)
    await h.silence(1.0)
    h.call.press("0")  # the entry ends after the inter-digit pause, past the grace period
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.call.hung_up is None
    assert h.finals("agent")[-1].text == "You pressed 0."
    assert cancelled("hangup") == before + 1
    assert (await h.finish()).reason == "hangup"


async def test_a_turn_taken_back_after_a_cancelled_goodbye_starts_from_before_it() -> None:
    """ "wait" in the grace period cancels the goodbye; "what are your hours" right after it
    continues that turn: the flow answers it from where it was before the goodbye (the turn's
    agent state is the goodbye reply's checkpoint, not a flow that has ended)."""
    async with httpx.AsyncClient() as http:
        agent = FlowAgent(
            embedded_specs()["receptionist"],
            AgentContext(call_id="c1", tenant_id="t1", http=http),
        )
        lines = ["Goodbye.", "wait", "Wait, what are your hours?"]
        h = Harness(lines, agent, closing_grace_ms=3000)
        s = await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 0.6)
        await until_closing_line_played(h)
        await h.silence(CONTINUATION_S + 0.1)
        await h.say(1, 0.3)  # "wait"
        for _ in range(100):  # until its transcript is in: the goodbye is called off
            if [t.text for t in h.finals("user")][-1:] == ["wait"]:
                break
            await h.silence(0.02)
        assert s.state == State.AGENT_SPEAKING  # the flow answers "wait"
        await h.say(2, 1.0)  # ... and the caller goes on: the same turn
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        assert h.call.hung_up is None
        assert not agent.ended
        assert s.history[-1].text.startswith("We're open Monday to Friday")
        assert agent.node == "anything_else"
        assert (await h.finish()).reason == "hangup"
