"""CallSession's state machine on a virtual clock with fake engines and a scripted agent."""

from __future__ import annotations

import asyncio

import httpx
import msgspec
import pytest

from agents.base import Agent, AgentContext, CallStarted, SendDtmf, TextChunk
from agents.catalog import embedded_specs
from agents.fake import ScriptedAgent
from agents.flow.agent import FlowAgent
from agents.spec import AgentSpec
from media.call import CallInfo, Direction
from media.clock import VirtualClock
from media.frames import AudioFrame, frames_from_samples
from media.virtual import VirtualCall, VirtualTransport
from pipeline.events import CallEnded, CallEvent, StateChanged, Transcript, TurnMetrics
from pipeline.fakes import FakeTts, fake_engines, utterance_audio
from pipeline.session import CallSession, State

FRAME = 0.02


def make_spec(**turn: object) -> AgentSpec:
    spec = msgspec.convert(
        {"name": "t", "kind": "llm", "llm": {}, "turn": turn},
        AgentSpec,
    )
    return spec


class Harness:
    def __init__(self, lines: list[str], agent: Agent, **turn: object) -> None:
        self.clock = VirtualClock()
        self.engines = fake_engines(lines)
        self.transport = VirtualTransport(self.clock)
        self.info = CallInfo(call_id="c1", tenant_id="t1", direction=Direction.INBOUND)
        self.call = VirtualCall(self.info)
        self.agent = agent
        self.events: list[CallEvent] = []
        self.spec = make_spec(**turn)
        self.seq = 0
        self.session: CallSession | None = None
        self.task: asyncio.Task[CallEnded] | None = None

    async def start(self) -> CallSession:
        self.session = CallSession(
            info=self.info,
            transport=self.transport,
            call=self.call,
            agent=self.agent,
            spec=self.spec,
            engines=self.engines,
            clock=self.clock,
            on_event=self.events.append,
        )
        self.task = asyncio.create_task(self.session.run())
        await self.clock.advance(0)
        return self.session

    async def send(self, frame_pcm: bytes) -> None:
        await self.transport.source.send(AudioFrame(frame_pcm, self.seq))
        self.seq += 1
        await self.clock.advance(FRAME)

    async def silence(self, seconds: float) -> None:
        for _ in range(round(seconds / FRAME)):
            if self.task is not None and self.task.done():
                return
            await self.send(AudioFrame.silence().pcm)

    async def say(self, k: int, seconds: float) -> None:
        for f in frames_from_samples(utterance_audio(k, seconds)):
            await self.send(f.pcm)

    async def until(self, state: State, limit_s: float = 10.0) -> None:
        assert self.session is not None
        for _ in range(round(limit_s / FRAME)):
            if self.session.state == state:
                return
            await self.send(AudioFrame.silence().pcm)
        raise AssertionError(f"state {state} not reached; now {self.session.state}")

    def finals(self, role: str) -> list[Transcript]:
        return [e for e in self.events if isinstance(e, Transcript) and e.final and e.role == role]

    async def finish(self) -> CallEnded:
        assert self.task is not None
        if not self.task.done():
            self.call.remote_hangup()
            await self.clock.advance(FRAME)
        return await asyncio.wait_for(self.task, 5)


async def test_greeting_turn_and_reply_with_marks() -> None:
    agent = ScriptedAgent(greeting="Hello there.", replies={"hours": "We open at nine."})
    h = Harness(["What are your hours?"], agent)
    s = await h.start()
    await h.until(State.LISTENING)
    assert [t.text for t in h.finals("agent")] == ["Hello there."]
    await h.say(0, 1.0)
    assert s.state == State.USER_SPEAKING
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert [t.text for t in h.finals("user")] == ["What are your hours?"]
    assert h.finals("agent")[-1].text == "We open at nine."
    metrics = [e for e in h.events if isinstance(e, TurnMetrics)]
    assert len(metrics) == 1
    marks = metrics[0].marks
    order = ["speech_end", "endpoint", "final_transcript", "agent_first_text", "first_tts_audio"]
    assert [marks[m] for m in order] == sorted(marks[m] for m in order)
    assert marks["first_frame_out"] >= marks["first_tts_audio"]
    # The endpoint came one silence window after speech ended (complete sentence → short window).
    window = marks["endpoint"] - marks["speech_end"]
    assert window == pytest.approx(h.spec.turn.complete_silence_ms / 1000, abs=0.041)
    assert metrics[0].voice_to_voice_ms is not None
    assert [m.role for m in s.history] == ["assistant", "user", "assistant"]
    ended = await h.finish()
    assert ended.reason == "hangup"
    states = [e.state for e in h.events if isinstance(e, StateChanged)]
    assert states[-1] == "ended"


async def test_barge_in_truncates_history_to_what_was_heard() -> None:
    long = " ".join(f"word{i}" for i in range(60))  # 6 s of fake speech
    agent = ScriptedAgent(greeting="Hi.", replies={"story": long})
    h = Harness(["tell me a story", "stop please"], agent, backchannel_ms=400)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(1.0)  # the agent talks for a second, then the caller interrupts
    frames_before = len(h.transport.sink.frames)
    await h.say(1, 1.0)
    assert s.state in (State.USER_SPEAKING, State.THINKING)
    sent_during = len(h.transport.sink.frames) - frames_before
    # playout paused at speech onset: at most the lead + detection frames went out
    assert sent_during <= 8
    interrupted = [t for t in h.finals("agent") if t.interrupted]
    assert len(interrupted) == 1
    heard = interrupted[0].text.split()
    assert 3 <= len(heard) < 60
    assert heard == long.split()[: len(heard)]
    assistant = [m for m in s.history if m.role == "assistant" and m.interrupted]
    assert assistant[0].text == interrupted[0].text
    await h.until(State.LISTENING)
    assert h.finals("user")[-1].text == "stop please"
    await h.finish()


async def test_short_backchannel_does_not_interrupt() -> None:
    long = " ".join(f"word{i}" for i in range(30))
    agent = ScriptedAgent(greeting="Hi.", replies={"story": long})
    h = Harness(["tell me a story", "mhm"], agent, backchannel_ms=600)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.8)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(0.5)
    await h.say(1, 0.3)  # "mhm"
    await h.until(State.LISTENING)
    agent_turns = h.finals("agent")
    assert agent_turns[-1].text == long
    assert not any(t.interrupted for t in agent_turns)
    assert [t.text for t in h.finals("user")] == ["tell me a story"]
    assert len(agent.inputs) == 2
    assert s.history[-1].text == long
    await h.finish()


async def test_no_input_reprompts_then_ends() -> None:
    agent = ScriptedAgent(greeting="Hi.")
    h = Harness([], agent, no_input_s=2.0, max_no_input=2)
    await h.start()
    await h.silence(12.0)
    ended = await h.finish()
    assert ended.reason == "no_input"
    texts = [t.text for t in h.finals("agent")]
    assert texts == ["Hi.", "Are you still there? (1)", "Are you still there? (2)"]
    assert h.call.hung_up == "no_input"


async def test_end_call_action_hangs_up_after_speaking() -> None:
    agent = ScriptedAgent(greeting="Hi.")
    h = Harness(["ok bye"], agent)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.silence(3.0)
    ended = await h.finish()
    assert ended.reason == "completed"
    assert h.call.hung_up == "completed"
    assert h.finals("agent")[-1].text == "Goodbye!"
    # the goodbye was played in full before the hangup
    tts = h.engines.tts
    assert isinstance(tts, FakeTts)
    assert "Goodbye!" in tts.texts


async def test_transfer_action() -> None:
    agent = ScriptedAgent(greeting="Hi.")
    h = Harness(["a human please"], agent)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.silence(3.0)
    ended = await h.finish()
    assert ended.reason == "transferred"
    assert h.call.transferred_to == "sip:desk@example.com"


async def test_dtmf_reaches_the_agent() -> None:
    agent = ScriptedAgent(greeting="Hi.")
    h = Harness([], agent)
    await h.start()
    await h.until(State.LISTENING)
    h.call.press("12#")
    await h.silence(0.1)
    await h.until(State.LISTENING)
    assert h.finals("agent")[-1].text == "You pressed 12."
    await h.finish()


async def test_max_duration_ends_the_call() -> None:
    agent = ScriptedAgent(greeting="Hi.")
    h = Harness([], agent, max_duration_s=10, no_input_s=60)
    await h.start()
    await h.silence(11.0)
    ended = await h.finish()
    assert ended.reason == "max_duration"
    assert ended.duration_s == pytest.approx(10.0, abs=0.05)


async def test_remote_hangup_mid_reply_stops_everything() -> None:
    long = " ".join(f"w{i}" for i in range(50))
    agent = ScriptedAgent(greeting=long)
    h = Harness([], agent)
    await h.start()
    await h.silence(0.5)
    h.transport.source.close()
    await h.clock.advance(FRAME)
    ended = await asyncio.wait_for(h.task, 5)  # type: ignore[arg-type]
    assert ended.reason == "hangup"
    written = len(h.transport.sink.frames)
    await h.clock.advance(1.0)
    assert len(h.transport.sink.frames) == written


async def test_speech_resuming_right_after_an_early_endpoint_continues_the_turn() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"book": "Sure, what day?"}, default="Sorry?")
    h = Harness(["Hi.", "Hi, I'd like to book a cleaning."], agent)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)  # "Hi," ...
    await h.silence(0.5)  # a comma pause: long enough for the complete-sentence window
    assert len(agent.inputs) == 2  # the early turn reached the agent
    await h.say(1, 1.2)  # ... "I'd like to book a cleaning."
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    users = [m.text for m in s.history if m.role == "user"]
    assert users == ["Hi, I'd like to book a cleaning."]  # one turn, from the combined audio
    assert [m.text for m in s.history if m.role == "assistant"] == ["Hi.", "Sure, what day?"]
    assert not any(t.interrupted for t in h.finals("agent"))
    user_finals = h.finals("user")
    assert [t.turn for t in user_finals] == [1, 1]  # the early final is superseded, same turn
    await h.finish()


async def test_a_continued_turn_undoes_what_the_early_turn_did_to_a_flow_agent() -> None:
    """ "Goodbye." ends the receptionist flow, but the caller goes on ("... actually, I'd like to
    book a cleaning"): the early turn is taken back, the flow agent's state with it, so the whole
    line is answered from where the conversation was (not by a flow stuck in `ended`)."""
    async with httpx.AsyncClient() as http:
        agent = FlowAgent(
            embedded_specs()["receptionist"],
            AgentContext(call_id="c1", tenant_id="t1", http=http),
        )
        h = Harness(["Goodbye.", "Goodbye, actually I'd like to book a cleaning."], agent)
        s = await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 0.6)  # "Goodbye." ...
        await h.silence(0.5)  # the endpoint: the flow says goodbye and ends
        assert agent.ended and agent.node == "goodbye"
        await h.say(1, 1.2)  # ... "actually I'd like to book a cleaning.": the same turn
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        assert not agent.ended and agent.waiting_for == "name"
        assert [m.text for m in s.history if m.role == "user"] == [
            "Goodbye, actually I'd like to book a cleaning."
        ]
        assert s.history[-1].text.startswith("Sure, I can help you book a cleaning.")
        ended = await h.finish()
    assert ended.reason == "hangup"


async def test_speech_long_after_the_reply_started_is_a_new_turn() -> None:
    long = " ".join(f"word{i}" for i in range(40))
    agent = ScriptedAgent(greeting="Hi.", replies={"story": long})
    h = Harness(["tell me a story", "wait"], agent, backchannel_ms=300)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(2.0)  # the caller has heard a good part of the reply
    await h.say(1, 0.8)
    await h.until(State.LISTENING)
    assert [m.text for m in s.history if m.role == "user"] == ["tell me a story", "wait"]
    assert any(t.interrupted for t in h.finals("agent"))
    await h.finish()


async def test_a_continued_turn_keeps_the_interrupted_reply_before_it() -> None:
    long = " ".join(f"word{i}" for i in range(60))
    agent = ScriptedAgent(greeting="Hi.", replies={"story": long, "address": "Main Street."})
    h = Harness(["tell me a story", "", "what is your address"], agent, backchannel_ms=400)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 0.6)
    await h.until(State.AGENT_SPEAKING)
    await h.silence(1.0)
    await h.say(1, 0.8)  # barges in; this part transcribes to nothing
    await h.silence(0.7)  # an early endpoint
    await h.say(2, 0.8)  # the caller goes on: one turn with the part before
    await h.until(State.LISTENING)
    interrupted = [m for m in s.history if m.interrupted]
    assert len(interrupted) == 1 and interrupted[0].text.startswith("word0 word1")
    assert [m.text for m in s.history if m.role == "user"] == [
        "tell me a story",
        "what is your address",
    ]
    assert s.history[-1].text == "Main Street."
    await h.finish()


async def test_a_preemptive_reply_is_made_during_the_pause_and_played_at_the_endpoint() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"hours": "We open at nine."}, speculates=True)
    h = Harness(["What are your hours?"], agent)
    tts = h.engines.tts
    assert isinstance(tts, FakeTts)
    s = await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 1.0)
    await h.silence(0.3)  # paused (160 ms), speculated; the 400 ms window is not over yet
    assert s.state == State.USER_SPEAKING
    assert tts.texts[-1] == "We open at nine."  # synthesized ahead, not played
    assert not any(isinstance(e, Transcript) and e.role == "user" and e.final for e in h.events)
    sent = len(h.transport.sink.frames)
    await h.until(State.AGENT_SPEAKING)
    await h.until(State.LISTENING)
    assert h.finals("agent")[-1].text == "We open at nine."
    assert len([i for i in agent.inputs if not isinstance(i, CallStarted)]) == 1
    assert len(h.transport.sink.frames) > sent
    marks = [e for e in h.events if isinstance(e, TurnMetrics)][0].marks
    # Nothing was left to do at the endpoint: text, audio and the first frame follow at once.
    assert marks["agent_first_text"] == marks["final_transcript"] == marks["endpoint"]
    assert marks["first_frame_out"] - marks["endpoint"] <= 2 * FRAME
    assert [m.text for m in s.history] == ["Hi.", "What are your hours?", "We open at nine."]
    await h.finish()


async def test_speech_resuming_after_the_pause_drops_the_held_reply_and_the_agent_state() -> None:
    async with httpx.AsyncClient() as http:
        agent = FlowAgent(
            embedded_specs()["receptionist"],
            AgentContext(call_id="c1", tenant_id="t1", http=http),
        )
        assert agent.may_speculate
        h = Harness(["Goodbye.", "Goodbye, actually I'd like to book a cleaning."], agent)
        tts = h.engines.tts
        assert isinstance(tts, FakeTts)
        s = await h.start()
        await h.until(State.LISTENING)
        await h.say(0, 0.6)  # "Goodbye." ...
        await h.silence(0.3)  # a pause: the goodbye is generated and held
        assert agent.ended and any("Have a great day" in t for t in tts.texts)
        await h.say(1, 1.2)  # ... the caller goes on before the window closes
        await h.until(State.AGENT_SPEAKING)
        await h.until(State.LISTENING)
        assert not agent.ended and agent.waiting_for == "name"
        agent_lines = [t.text for t in h.finals("agent")]
        assert not any("Have a great day" in line for line in agent_lines)  # never played
        assert agent_lines[-1].startswith("Sure, I can help you book a cleaning.")
        assert [m.text for m in s.history if m.role == "user"] == [
            "Goodbye, actually I'd like to book a cleaning."
        ]
        ended = await h.finish()
    assert ended.reason == "hangup"


async def test_without_preemption_nothing_is_generated_before_the_endpoint() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"hours": "We open at nine."}, speculates=True)
    h = Harness(["What are your hours?"], agent, preemptive=False)
    tts = h.engines.tts
    assert isinstance(tts, FakeTts)
    await h.start()
    await h.until(State.LISTENING)
    await h.say(0, 1.0)
    await h.silence(0.3)
    assert tts.texts == ["Hi."]
    await h.until(State.AGENT_SPEAKING)
    assert tts.texts == ["Hi.", "We open at nine."]
    await h.finish()


async def test_an_agent_dtmf_action_reaches_the_call_after_what_was_said_before_it() -> None:
    class Dialing(ScriptedAgent):
        async def respond(self, history, event):  # type: ignore[no-untyped-def, override]
            if isinstance(event, CallStarted):
                yield TextChunk("Connecting you to extension 42.")
                yield SendDtmf("42#")
                yield TextChunk("Done.")

    agent = Dialing()
    h = Harness([], agent)
    await h.start()
    await h.until(State.AGENT_SPEAKING)
    assert h.call.dtmf_sent == []  # not before the sentence ahead of it has been played
    await h.until(State.LISTENING)
    assert h.call.dtmf_sent == ["42#"]
    assert h.finals("agent")[-1].text == "Connecting you to extension 42. Done."
    await h.finish()
