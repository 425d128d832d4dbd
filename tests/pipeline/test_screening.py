"""Outbound calls screened by answering-machine detection (`[amd]`), through `CallSession` on a
virtual clock: espeak-ng far ends through a G.711 line, fake speech engines."""

from __future__ import annotations

import asyncio

import msgspec
import numpy as np

from agents.fake import ScriptedAgent
from agents.spec import AgentSpec
from media.call import CallInfo, Direction
from media.clock import VirtualClock
from media.frames import SAMPLE_RATE, frames_from_samples
from media.virtual import VirtualCall, VirtualTransport
from pipeline.events import AmdDetected, CallEnded, CallEvent, Transcript
from pipeline.fakes import FakeStt, FakeTts, fake_engines, utterance_audio
from pipeline.screening import PAUSE_MS
from pipeline.session import CallSession
from tests.support.speech import Samples, espeak, telephone

FRAME = 0.02
GREETING = (
    "Hi, you've reached Doctor Smith's office. We can't take your call right now, "
    "please leave a message after the tone."
)
MESSAGE = "Hi $name, this is Bright Smile Dental about your appointment. Please call us back."


def spec(greeting: str = "", **amd: object) -> AgentSpec:
    raw = {"name": "t", "kind": "llm", "llm": {}, "greeting": greeting, "amd": amd}
    return msgspec.convert(raw, AgentSpec)


def beep(hz: float, s: float) -> Samples:
    t = np.arange(int(SAMPLE_RATE * s)) / SAMPLE_RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(s: float) -> Samples:
    return np.zeros(int(SAMPLE_RATE * s), dtype=np.int16)


class ClockedTts(FakeTts):
    """FakeTts that keeps when each synthesis was asked for."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.asked: list[tuple[float, str]] = []

    async def synthesize(self, text: str, voice: str = "") -> Samples:
        self.asked.append((self.clock.now(), text))
        return await super().synthesize(text, voice)


class FarEnd:
    """An outbound call's session, and the far end that answered it playing `audio`."""

    def __init__(
        self,
        agent_spec: AgentSpec,
        direction: Direction = Direction.OUTBOUND,
        lines: list[str] | None = None,
    ) -> None:
        self.clock = VirtualClock()
        self.engines = fake_engines(lines or [])
        self.tts = ClockedTts(self.clock)
        self.engines.tts = self.tts
        self.transport = VirtualTransport(self.clock)
        self.info = CallInfo(call_id="c1", tenant_id="t1", direction=direction)
        self.call = VirtualCall(self.info)
        self.events: list[CallEvent] = []
        self.session = CallSession(
            info=self.info,
            transport=self.transport,
            call=self.call,
            agent=ScriptedAgent(greeting="Hello, this is Bright Smile Dental."),
            spec=agent_spec,
            engines=self.engines,
            clock=self.clock,
            on_event=self.events.append,
        )

    async def answer(self, audio: Samples, *, hang_up: bool = True) -> CallEnded | None:
        """Start the call and play `audio` (then silence, up to 40 s) to it, frame by frame;
        the call's end, or None if it is still going on then (`hang_up`: the far end then
        hangs up)."""
        task = asyncio.create_task(self.session.run())
        await self.clock.advance(0)
        padded = np.concatenate([telephone(audio), silence(40.0)])
        for frame in frames_from_samples(padded):
            if task.done():
                return task.result()
            await self.clock.advance(FRAME)  # a frame reaches the node once its 20 ms are over
            await self.transport.source.send(frame)
            await self.clock.advance(0)
            if not hang_up and self.agent_lines():
                break
        self.call.remote_hangup()
        await self.clock.advance(FRAME)
        await asyncio.wait_for(task, 5)
        return None

    def amd(self) -> list[AmdDetected]:
        return [e for e in self.events if isinstance(e, AmdDetected)]

    def agent_lines(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Transcript) and e.role == "agent"]


async def test_a_person_hears_the_agents_greeting_after_the_decision() -> None:
    far = FarEnd(spec())
    assert await far.answer(np.concatenate([silence(0.4), espeak("Hello?")]), hang_up=False) is None
    (amd,) = far.amd()
    assert (amd.result, amd.reason) == ("human", "short_greeting")
    assert amd.decided_ms <= 2500 and amd.evidence.utterances == 1
    assert far.agent_lines()[0] == "Hello, this is Bright Smile Dental."
    assert far.call.hung_up is None or far.call.hung_up != "machine"
    assert isinstance(far.engines.tts, FakeTts) and far.engines.tts.texts[0].startswith("Hello")


async def test_a_machine_is_hung_up_on_without_the_agent() -> None:
    far = FarEnd(spec())
    ended = await far.answer(np.concatenate([silence(0.3), espeak(GREETING)]))
    assert ended is not None and ended.reason == "machine"
    (amd,) = far.amd()
    assert (amd.result, amd.reason) == ("machine", "long_greeting")
    assert amd.decided_ms <= 3500
    assert far.call.hung_up == "machine"
    assert far.agent_lines() == [] and far.transport.sink.frames == []
    assert [e for e in far.events if isinstance(e, CallEnded)] == [ended]


async def test_the_voicemail_message_starts_right_after_the_beep() -> None:
    far = FarEnd(spec(on_machine="leave_message", voicemail_message=MESSAGE))
    greeting = espeak(GREETING)
    audio = np.concatenate([silence(0.3), greeting, silence(0.7), beep(1400.0, 0.5)])
    beep_end = len(audio) / SAMPLE_RATE
    ended = await far.answer(audio)
    assert ended is not None and ended.reason == "voicemail"
    (amd,) = far.amd()
    assert amd.result == "machine"
    assert far.call.hung_up == "voicemail"
    tts = far.engines.tts
    assert isinstance(tts, FakeTts) and tts.texts == [MESSAGE]  # $name unknown: as written
    sink = far.transport.sink
    expected = int(len(MESSAGE.split()) * FakeTts.WORD_S * SAMPLE_RATE) // 320
    assert len(sink.frames) >= expected  # the whole message was sent
    # the message goes out within 500 ms of the beep's end: here once the first frame
    # without the tone is in (the beep ends mid-frame: up to 40 ms)
    print(f"message started {1000 * (sink.times[0] - beep_end):.0f} ms after the beep")
    assert 0.0 <= sink.times[0] - beep_end <= 0.5
    assert far.agent_lines() == []


async def test_outbound_calls_are_screened_by_default_and_the_greeting_is_ready_first() -> None:
    """An agent without an `[amd]` section screens its outbound calls; its greeting's first
    clause is synthesized from the answer on, so a person hears it right at the decision."""
    greeting = "Hello, this is Bright Smile Dental."
    default = msgspec.convert({"name": "t", "kind": "llm", "llm": {}}, AgentSpec)
    assert default.amd.enabled
    far = FarEnd(msgspec.structs.replace(default, greeting=greeting))
    assert await far.answer(np.concatenate([silence(0.4), espeak("Hello?")]), hang_up=False) is None
    (amd,) = far.amd()
    assert amd.result == "human"
    warmed_at, text = far.tts.asked[0]
    assert text == greeting and warmed_at == 0.0  # at the answer, before the decision
    assert 1000 * far.transport.sink.times[0] <= amd.decided_ms + 40  # within two frames


async def test_a_person_still_talking_at_the_deadline_is_not_talked_over() -> None:
    """A long answer with a person's words is decided at the deadline while it goes on; the
    greeting waits for its end (a pause of `PAUSE_MS`), not the 800 ms of the silence rule."""
    far = FarEnd(spec(), lines=["Hello, this is Karen speaking, go ahead."])
    talking = utterance_audio(0, 4.2)  # from 0.3 s to 4.5 s: past the 3.5 s deadline
    assert await far.answer(np.concatenate([silence(0.3), talking]), hang_up=False) is None
    (amd,) = far.amd()
    assert (amd.result, amd.reason, amd.evidence.answer) == ("human", "deadline", "speaking")
    first_out = far.transport.sink.times[0]
    print(f"greeting {1000 * (first_out - 4.5):.0f} ms after the person stopped")
    # after their end (a frame of float slack), before the silence rule's 800 ms
    assert 4.5 + PAUSE_MS / 1000 - 0.02 <= first_out <= 4.5 + 0.8


async def test_inbound_calls_and_agents_without_amd_are_not_screened() -> None:
    for far in (FarEnd(spec(), Direction.INBOUND), FarEnd(spec(enabled=False))):
        assert await far.answer(silence(1.0), hang_up=False) is None
        assert far.amd() == []
        assert far.agent_lines()[0] == "Hello, this is Bright Smile Dental."
        assert far.transport.sink.times[0] < 0.1  # the greeting at once, not after a decision


async def test_a_short_greeting_is_a_machine_by_its_words() -> None:
    """The greeting's first half second is transcribed while it goes on (the fake recogniser
    hears its line in noise of its loudness) and its words decide before its length could."""
    far = FarEnd(spec(), lines=["Sorry, I'm not available right now."])
    ended = await far.answer(np.concatenate([silence(0.5), utterance_audio(0, 1.8)]))
    assert ended is not None and ended.reason == "machine"
    (amd,) = far.amd()
    assert (amd.result, amd.reason, amd.evidence.phrase) == (
        "machine",
        "greeting_phrase",
        "not available",
    )
    assert 980 <= amd.decided_ms <= 1200  # 0.5 s of speech from 0.5 s, then its decode
    stt = far.engines.stt
    assert isinstance(stt, FakeStt) and stt.requests[0] == (False, 25 * 320)
