"""The session with a caller whose line sends the agent's voice back (60 ms later, at −10 dB),
on the virtual clock with fake engines: the agent does not interrupt itself; the caller
talking over the echo still barges in."""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt
from prometheus_client import REGISTRY

from agents.fake import ScriptedAgent
from media.frames import FRAME_SAMPLES, frames_from_samples
from pipeline.fakes import utterance_audio
from pipeline.session import State
from tests.pipeline.test_session import FRAME, Harness

STORY = " ".join(f"word{i}" for i in range(40))  # 4 s of fake speech


class EchoingLine:
    """The caller's phone: it plays the agent's frames as they come and its line carries
    what it played back `delay_s` later at `db`, with the caller's own voice when given."""

    def __init__(self, h: Harness, *, delay_s: float = 0.06, db: float = -10.0) -> None:
        self.h = h
        self.played = 0
        self.gain = 10 ** (db / 20)
        silence = np.zeros(FRAME_SAMPLES)
        self.line: deque[npt.NDArray[np.float64]] = deque(
            [silence] * round(delay_s / FRAME), maxlen=round(delay_s / FRAME) + 1
        )

    async def tick(self, voice: npt.NDArray[np.int16] | None = None) -> None:
        frames = self.h.transport.sink.frames
        out = np.zeros(FRAME_SAMPLES)
        if self.played < len(frames):
            out = frames[self.played].samples.astype(np.float64)
            self.played += 1
        self.line.append(out * self.gain)
        inbound = self.line.popleft() + (0.0 if voice is None else voice)
        await self.h.send(np.clip(inbound, -32768, 32767).astype(np.int16).tobytes())

    async def until(self, state: State, limit_s: float = 15.0) -> None:
        assert self.h.session is not None
        for _ in range(round(limit_s / FRAME)):
            if self.h.session.state == state:
                return
            await self.tick()
        raise AssertionError(f"state {state} not reached; now {self.h.session.state}")

    async def ticks(self, seconds: float) -> None:
        for _ in range(round(seconds / FRAME)):
            await self.tick()

    async def say(self, k: int, seconds: float) -> None:
        for f in frames_from_samples(utterance_audio(k, seconds)):
            await self.tick(f.samples)


def suppressed() -> float:
    return REGISTRY.get_sample_value("voicenode_echo_suppressed_frames_total") or 0.0


def longest_break(h: Harness, first: int) -> float:
    """The longest time between two of the agent's frames being sent, from frame `first`."""
    times = h.transport.sink.times[first:]
    return max(b - a for a, b in zip(times, times[1:], strict=False))


async def story_with_echo(echo_guard: bool) -> tuple[Harness, ScriptedAgent, int]:
    """The caller asks for the story over the echoing line, then listens for 6 s (the story
    is 4 s); returns the index of the story's first frame on the sink."""
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY})
    h = Harness(["tell me a story"], agent, echo_guard=echo_guard)
    line = EchoingLine(h)
    await h.start()
    await line.until(State.LISTENING)
    await line.ticks(0.5)  # the greeting's echo dies away
    first = len(h.transport.sink.frames)
    await line.say(0, 0.8)
    await line.until(State.AGENT_SPEAKING)
    await line.ticks(6.0)
    return h, agent, first


async def test_the_agent_does_not_interrupt_itself_on_its_own_echo() -> None:
    before = suppressed()
    h, agent, first = await story_with_echo(echo_guard=True)
    assert h.session is not None and h.session.state == State.LISTENING
    agents = h.finals("agent")
    assert [t.text for t in agents] == ["Hi.", STORY]
    assert not any(t.interrupted for t in agents)
    assert [t.text for t in h.finals("user")] == ["tell me a story"]
    assert len(agent.inputs) == 2  # the greeting and the one question: no turn from the echo
    assert len(h.transport.sink.frames) - first == len(STORY.split()) * 5  # 100 ms a word
    assert longest_break(h, first) <= FRAME + 1e-9  # the story went out without a pause
    assert suppressed() - before >= 100  # most of the 4 s story's echo
    await h.finish()


async def test_unguarded_the_agent_interrupts_itself() -> None:
    """What the guard prevents: the echo taken for the caller, who "says" the question again."""
    h, agent, first = await story_with_echo(echo_guard=False)
    assert len(h.transport.sink.frames) - first < len(STORY.split()) * 5 // 2
    assert len(agent.inputs) > 2
    await h.finish()


async def test_the_caller_talking_over_the_echo_barges_in() -> None:
    agent = ScriptedAgent(greeting="Hi.", replies={"story": STORY})
    # The fake recogniser hears a line by its loudest sample: the echo adds to the caller's.
    h = Harness(["tell me a story", "stop please", "stop please"], agent, backchannel_ms=400)
    line = EchoingLine(h)
    s = await h.start()
    await line.until(State.LISTENING)
    await line.ticks(0.5)  # the greeting's echo dies away
    await line.say(0, 0.8)
    await line.until(State.AGENT_SPEAKING)
    await line.ticks(1.0)  # the agent talks for a second, its voice coming back
    await line.say(1, 1.0)
    assert s.state in (State.USER_SPEAKING, State.THINKING)
    interrupted = [t for t in h.finals("agent") if t.interrupted]
    assert len(interrupted) == 1
    heard = interrupted[0].text.split()
    assert 3 <= len(heard) < 40
    assert heard == STORY.split()[: len(heard)]
    await line.until(State.LISTENING)
    assert h.finals("user")[-1].text == "stop please"
    await h.finish()
