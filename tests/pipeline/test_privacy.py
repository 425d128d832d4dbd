"""Sensitive steps and the recording: the agent's `RecordingControl` actions carried out on the
call's recording (each reason held apart), the sensitive pause put after a reply's last words
and the resume before the next reply's first output, and keys of a sensitive step masked."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

import numpy as np

from agents.base import Agent, AgentInput, AgentOutput, Message, RecordingControl, TextChunk
from agents.sensitive import REDACTED
from media.clock import VirtualClock
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame
from media.recording_file import CallRecorder
from media.recording_transport import RecordingTransport
from media.virtual import VirtualTransport
from pipeline.dtmf import keys_shown
from pipeline.privacy import RecordingSwitch, with_sensitive_steps

PAUSE = RecordingControl(pause=True, reason="sensitive")
RESUME = RecordingControl(pause=False, reason="sensitive")


class StepAgent(Agent):
    """Says its lines; `sensitive_input` becomes `after` once the reply's words are out, and
    `before` is what it is as the reply starts (a slot filled at the reply's first step)."""

    def __init__(self) -> None:
        self.sensitive = False
        self.steps: list[tuple[bool, list[str], bool]] = []

    @property
    def sensitive_input(self) -> bool:
        return self.sensitive

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        before, lines, after = self.steps.pop(0)
        self.sensitive = before
        for line in lines:
            yield TextChunk(line)
        self.sensitive = after


async def run(agent: StepAgent, switch: RecordingSwitch) -> list[AgentOutput]:
    outs = [o async for o in with_sensitive_steps(agent, agent.respond([], TextChunk("")), switch)]  # type: ignore[arg-type]
    for out in outs:  # carried out, as the session would after the words before it
        if isinstance(out, RecordingControl):
            switch.apply(out)
    return outs


def recording(tmp_path: Path, clock: VirtualClock) -> tuple[VirtualTransport, RecordingTransport]:
    inner = VirtualTransport(clock)
    recorder = CallRecorder(tmp_path / "call.wav", "wav", start_s=clock.now())
    return inner, RecordingTransport(inner, recorder, clock)


async def test_the_pause_follows_the_question_and_the_resume_leads_the_answer(
    tmp_path: Path,
) -> None:
    _, recorded = recording(tmp_path, VirtualClock(100.0))
    switch = RecordingSwitch(recorded)
    agent = StepAgent()
    agent.steps = [
        (False, ["Hello.", " Key in your card."], True),  # asks a sensitive slot
        (True, [" Sorry, again please."], True),  # still asking it
        (False, [" Thank you.", " Goodbye."], False),  # filled: the flow goes on
    ]
    assert await run(agent, switch) == [TextChunk("Hello."), TextChunk(" Key in your card."), PAUSE]
    assert recorded.paused_for == {"sensitive"}
    assert await run(agent, switch) == [TextChunk(" Sorry, again please.")]
    assert await run(agent, switch) == [RESUME, TextChunk(" Thank you."), TextChunk(" Goodbye.")]
    assert recorded.paused_for == frozenset()
    await recorded.close()


async def test_a_pause_lost_with_a_cancelled_reply_is_asked_again(tmp_path: Path) -> None:
    _, recorded = recording(tmp_path, VirtualClock(100.0))
    switch = RecordingSwitch(recorded)
    agent = StepAgent()
    agent.steps = [(False, ["Key in your card."], True), (True, ["Again please."], True)]
    outs = [o async for o in with_sensitive_steps(agent, agent.respond([], TextChunk("")), switch)]  # type: ignore[arg-type]
    assert outs[-1] == PAUSE  # never carried out: the reply was cut short (a barge-in)
    assert await run(agent, switch) == [TextChunk("Again please."), PAUSE]
    assert recorded.paused_for == {"sensitive"}
    await recorded.close()


async def test_an_unrecorded_call_gets_no_recording_actions() -> None:
    switch = RecordingSwitch.of(VirtualTransport(VirtualClock()))
    assert not switch.recorded
    agent = StepAgent()
    agent.steps = [(False, ["Key in your card."], True), (False, ["Thanks."], False)]
    assert await run(agent, switch) == [TextChunk("Key in your card.")]
    assert await run(agent, switch) == [TextChunk("Thanks.")]
    assert not switch.apply(RecordingControl(pause=True))


async def test_reasons_are_held_apart_and_the_recording_is_muted_over_the_span(
    tmp_path: Path,
) -> None:
    """The API's resume does not unmute a sensitive step; the caller's audio is silence in the
    file from the sensitive pause to its resume, whatever else paused or resumed within."""
    clock = VirtualClock(100.0)
    inner, recorded = recording(tmp_path, clock)
    switch = RecordingSwitch(recorded)
    tone = (8000 * np.sin(2 * np.pi * 770 * np.arange(FRAME_SAMPLES) / SAMPLE_RATE)).astype("<i2")
    reader = asyncio.create_task(_drain(recorded))
    for slot in range(150):  # 3 s of a steady tone from the caller
        if slot == 50:
            assert switch.apply(PAUSE)
        if slot == 60:
            assert recorded.pause()  # the control API, during the sensitive step
        if slot == 70:
            assert recorded.resume()  # ... and its resume: the step still holds
            assert recorded.paused_for == {"sensitive"}
        if slot == 100:
            assert switch.apply(RESUME)
            assert not switch.apply(RESUME)
        await inner.source.send(AudioFrame(tone.tobytes(), slot))
        await clock.advance(0.02)
    inner.source.close()
    await asyncio.wait_for(reader, 10)
    await recorded.close()
    info = recorded.recorder.close()
    assert [(p.start_s, p.end_s) for p in info.pauses] == [(1.0, 2.0)]
    with wave.open(str(recorded.recorder.path)) as w:
        caller = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)[:, 0]
    energy = [
        float(np.sqrt(np.mean(caller[i : i + 320].astype(np.float64) ** 2)))
        for i in range(0, len(caller), 320)
    ]
    assert all(e < 1 for e in energy[50:100])  # muted: digital silence
    assert all(e > 4000 for e in energy[:50] + energy[100:150])


async def _drain(transport: RecordingTransport) -> None:
    async for _ in transport.source.frames():
        pass


def test_keys_of_a_sensitive_step_are_shown_masked() -> None:
    assert keys_shown("4111111111111111", sensitive=True) == "[CARD]"
    assert keys_shown("1234", sensitive=True) == REDACTED
    assert keys_shown("1234", sensitive=False) == "1234"
