"""No dead air, on a virtual clock with fake engines: a failed transfer, DTMF or tool is heard
about (the agent's fallback line), the call goes on, and the failure is logged and put on the
call record; speech that yields no words is no turn; silence gets a reprompt."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence

import httpx
import msgspec
import pytest

from agents.base import (
    AgentContext,
    AgentInput,
    AgentOutput,
    Message,
    NoInput,
    SendDtmf,
    TextChunk,
    ToolResult,
    UserSaid,
)
from agents.catalog import embedded_specs
from agents.fake import ScriptedAgent
from agents.flow.agent import FlowAgent
from media.call import CallControlError, CallInfo
from media.virtual import VirtualCall
from pipeline.events import CallEvent, ToolCalled
from pipeline.session import State

from .test_session import FRAME, Harness

FALLBACK = "Sorry, that did not work. What else can I do for you?"


class RefusingCall(VirtualCall):
    """Call control that fails the way a transport does (`error` raised by transfer/DTMF)."""

    def __init__(self, info: CallInfo, error: BaseException) -> None:
        super().__init__(info)
        self.error = error
        self.tries: list[str] = []

    async def transfer(self, target: str) -> None:
        self.tries.append(f"transfer {target}")
        raise self.error

    async def send_dtmf(self, digits: str) -> None:
        self.tries.append(f"dtmf {digits}")
        raise self.error


def harness(lines: list[str], agent: ScriptedAgent | FlowAgent, error: BaseException) -> Harness:
    h = Harness(lines, agent)
    h.spec = msgspec.structs.replace(h.spec, action_failed_line=FALLBACK)
    h.call = RefusingCall(h.info, error)
    return h


def failures(events: list[CallEvent]) -> list[ToolCalled]:
    return [e for e in events if isinstance(e, ToolCalled) and not e.ok]


def silence_after_failure(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The session's own measure (its clock): failure to the next agent frame out, in ms."""
    return [
        r.silence_ms
        for r in caplog.records
        if r.getMessage() == "the caller hears the agent again after a failed action"
    ]


def failure_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.action, r.error) for r in caplog.records if r.getMessage() == "call action failed"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (CallControlError("no AMI here", kind="unsupported"), "unsupported"),  # AudioSocket
        (CallControlError("the transfer target answered 486"), "refused"),  # a REFER refused
        (CallControlError("Redirect failed", kind="ami_error"), "ami_error"),  # AMI error
        (TimeoutError(), "timeout"),  # no NOTIFY in time
        (RuntimeError("a bug in a transport"), "internal"),
    ],
)
async def test_a_failed_transfer_is_heard_and_the_call_goes_on(
    error: BaseException, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline")
    agent = ScriptedAgent(greeting="Hi.", replies={"hours": "We open at nine."})
    h = harness(["a human please", "what are your hours"], agent, error)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.AGENT_SPEAKING)  # "Transferring you now."
    await h.until(State.LISTENING)
    assert h.call.tries == ["transfer sip:desk@example.com"]
    assert h.call.hung_up is None and h.call.transferred_to is None
    assert [t.text for t in h.finals("agent")][-2:] == ["Transferring you now.", FALLBACK]
    assert s.history[-1] == Message(role="assistant", text=FALLBACK)
    # The call record and the log say what failed: the action and the error kind, no target.
    (record,) = failures(h.events)
    assert (record.name, record.result, record.arguments) == ("transfer", f"failed: {kind}", {})
    assert failure_logs(caplog) == [("transfer", kind)]
    assert "desk@example.com" not in caplog.text
    # The fallback line was made while the transfer line played: its first frame went out
    # on the next 20 ms tick after the failure, on the session's clock.
    (silence_ms,) = silence_after_failure(caplog)
    assert silence_ms <= 2 * FRAME * 1000
    # And the conversation goes on.
    await h.say(1, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.finals("agent")[-1].text == "We open at nine."
    ended = await h.finish()
    assert ended.reason == "hangup"


async def test_a_failed_transfer_takes_a_flow_agent_back_to_where_it_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The receptionist lets the call go when it transfers ("ended"); when the transfer fails
    it is back at its main menu, so the caller's next question is answered."""
    async with httpx.AsyncClient() as http:
        agent = FlowAgent(
            embedded_specs()["receptionist"],
            AgentContext(call_id="c1", tenant_id="t1", http=http),
        )
        h = harness(
            ["Can I talk to someone at the front desk?", "What are your opening hours?"],
            agent,
            CallControlError("no AMI", kind="unsupported"),
        )
        h.spec = msgspec.structs.replace(
            embedded_specs()["receptionist"], action_failed_line=FALLBACK
        )
        s = await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 1.0)
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        assert h.call.tries == ["transfer sip:frontdesk@clinic.example"]
        assert h.finals("agent")[-1].text == FALLBACK
        assert not agent.ended
        await h.say(1, 1.0)
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        assert "Monday" in s.history[-1].text
        ended = await h.finish()
    assert ended.reason == "hangup"


async def test_a_failed_dtmf_is_heard_after_what_the_agent_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline")

    class Dialing(ScriptedAgent):
        async def respond(
            self, history: Sequence[Message], event: AgentInput
        ) -> AsyncGenerator[AgentOutput, None]:
            if isinstance(event, UserSaid):
                yield TextChunk("Pressing one for you.")
                yield SendDtmf("1")
                yield TextChunk("Done.")
                return
            async for out in super().respond(history, event):
                yield out

    h = harness(["press one"], Dialing(greeting="Hi."), CallControlError("x", kind="unsupported"))
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.call.tries == ["dtmf 1"]
    assert [t.text for t in h.finals("agent")][-2:] == ["Pressing one for you. Done.", FALLBACK]
    record = [(e.name, e.result) for e in failures(h.events)]
    assert record == [("send_dtmf", "failed: unsupported")]
    (silence_ms,) = silence_after_failure(caplog)
    assert silence_ms <= 2 * FRAME * 1000  # "Done." follows the failure at once
    assert (await h.finish()).reason == "hangup"


class ToolUser(ScriptedAgent):
    """Calls a tool that fails; says `after` once it has failed (nothing when empty)."""

    def __init__(self, after: str) -> None:
        super().__init__(greeting="Hi.")
        self.after = after

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        if isinstance(event, UserSaid):
            yield TextChunk("Let me check.")
            yield ToolResult(
                name="lookup", arguments={"q": "x"}, result="error: no answer within 5 s", ok=False
            )
            if self.after:
                yield TextChunk(self.after)
            return
        async for out in super().respond(history, event):
            yield out


async def test_a_failed_tool_the_agent_says_nothing_about_gets_the_fallback_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline")
    h = harness(["check my booking"], ToolUser(after=""), CallControlError("unused"))
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert [t.text for t in h.finals("agent")][-2:] == ["Let me check.", FALLBACK]
    assert failure_logs(caplog) == [("tool", "timeout")]
    # The agent's own ToolCalled is the record (the session adds no second one).
    assert [(e.name, e.ok) for e in h.events if isinstance(e, ToolCalled)] == [("lookup", False)]
    assert len(silence_after_failure(caplog)) == 1
    assert (await h.finish()).reason == "hangup"


async def test_a_failed_tool_the_agent_talks_about_needs_no_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline")
    h = harness(["check my booking"], ToolUser(after=" The system is down."), CallControlError(""))
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.LISTENING, limit_s=10)
    await h.silence(1.0)
    assert h.finals("agent")[-1].text == "Let me check. The system is down."
    assert FALLBACK not in [t.text for t in h.finals("agent")]
    assert failure_logs(caplog) == [("tool", "timeout")]
    assert (await h.finish()).reason == "hangup"


async def test_speech_without_words_is_no_turn() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"hours": "We open at nine."})
    h = Harness(["", "what are your hours"], agent)  # line 0 transcribes to nothing
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.silence(1.5)
    assert s.state == State.LISTENING
    assert len(agent.inputs) == 1  # the greeting only: the agent was not called
    assert h.finals("user") == []
    assert [m.role for m in s.history] == ["assistant"]
    await h.say(1, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert [t.turn for t in h.finals("user")] == [1]  # the first real turn is turn 1
    assert h.finals("agent")[-1].text == "We open at nine."
    await h.finish()


async def test_speech_without_words_does_not_cancel_the_reply_it_paused() -> None:
    """A cough while the agent is still working on its reply: the reply is paused at the
    cough's start and, the cough having no words, plays once it is ready."""

    class Slow(ScriptedAgent):
        def __init__(self) -> None:
            super().__init__(greeting="Hi.", replies={"hours": "We open at nine."})
            self.ready = asyncio.Event()

        async def respond(
            self, history: Sequence[Message], event: AgentInput
        ) -> AsyncGenerator[AgentOutput, None]:
            if isinstance(event, UserSaid):
                await self.ready.wait()
            async for out in super().respond(history, event):
                yield out

    agent = Slow()
    h = Harness(["what are your hours", ""], agent, backchannel_ms=2000)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.THINKING)  # the endpoint: the agent is working on the reply
    await h.silence(1.6)  # (speech sooner than this would continue the turn)
    await h.say(1, 0.3)  # a cough (no words), shorter than a barge-in
    await h.silence(1.5)
    assert s.state == State.THINKING  # the reply is still on its way, not cancelled
    agent.ready.set()
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert [t.text for t in h.finals("user")] == ["what are your hours"]
    assert h.finals("agent")[-1].text == "We open at nine."
    assert not any(t.interrupted for t in h.finals("agent"))
    assert [m.text for m in s.history if m.role == "user"] == ["what are your hours"]
    assert len(agent.inputs) == 2  # the greeting and the one real turn
    await h.finish()


class Mute(ScriptedAgent):
    """Has nothing to say when the caller is silent."""

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        self.inputs.append(event)
        if isinstance(event, NoInput):
            return
        yield TextChunk("Which day suits you?")


async def test_silence_gets_the_reprompt_line_when_the_agent_has_none() -> None:
    agent = Mute()
    h = Harness([], agent, no_input_s=3.0, max_no_input=2, reprompt_line="Hello? Still there?")
    await h.start()
    await h.until(State.LISTENING)
    start = h.clock.now()
    await h.silence(20.0)
    ended = await h.finish()
    assert ended.reason == "no_input"
    texts = [t.text for t in h.finals("agent")]
    assert texts == ["Which day suits you?", "Hello? Still there?", "Hello? Still there?"]
    # After the question: N s of silence, the line, N s, the line, N s, the hang-up.
    assert ended.duration_s <= start + 3 * 3.0 + 2 * 2.0
    assert [type(i).__name__ for i in agent.inputs] == ["CallStarted", "NoInput", "NoInput"]


async def test_the_agents_own_reprompt_comes_first() -> None:
    agent = ScriptedAgent(greeting="Hi.")
    h = Harness([], agent, no_input_s=2.0, max_no_input=1, reprompt_line="Hello?")
    await h.start()
    await h.silence(8.0)
    assert [t.text for t in h.finals("agent")] == ["Hi.", "Are you still there? (1)"]
    assert (await h.finish()).reason == "no_input"


def test_a_failure_on_the_record_names_no_target() -> None:
    from pipeline.actions import ActionFailure

    event = ActionFailure(action="transfer", error="refused").event()
    assert event == ToolCalled(name="transfer", arguments={}, result="failed: refused", ok=False)


async def test_the_fallback_line_is_made_once_and_survives_a_cancelled_reply() -> None:
    from pipeline.actions import FallbackVoice
    from pipeline.fakes import FakeTts

    tts = FakeTts()
    voice = FallbackVoice(tts, "", FALLBACK)
    voice.prepare()
    voice.prepare()
    await asyncio.sleep(0)
    assert tts.texts == ["Sorry, that did not work.", "What else can I do for you?"]
    first = asyncio.ensure_future(voice.synthesize("Sorry, that did not work."))
    await asyncio.sleep(0)
    first.cancel()  # a reply cancelled (barge-in) while waiting for the line
    audio = await voice.synthesize("Sorry, that did not work.")
    assert len(audio) == 5 * int(FakeTts.WORD_S * 16000)  # five words, made once
    assert await voice.synthesize("Something else.") is not None
    assert tts.texts[-1] == "Something else."  # other text goes to the TTS
    assert len(tts.texts) == 3
    voice.close()
