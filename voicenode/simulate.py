"""`voicenode simulate`: a conversation with an agent over a virtual transport, in real time.

A scripted caller speaks its lines (text rendered with a caller voice distinct from the
agent's, or WAV files), one 20 ms frame at a time on the real clock, waiting for the agent to
finish each reply — or barging in a set time after the agent starts speaking (a `CallerLine`
with `barge_in_after`; on the first line, after the greeting starts), or saying "mhm" over it
(`backchannel`). The real pipeline runs in between. Writes `agent.wav` (everything the agent
said, 16 kHz) and `conversation.json` (turns with text, interruption flag and TurnMarks).

The result keeps when things happened on the call's clock, for the bench's turn-taking
measurements: the clock time of every event (`event_times`) and of every line's first and
last frame sent (`line_spans`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from agents.base import Agent, AgentContext
from agents.factory import build_agent
from agents.llm_access import LlmAccess
from agents.spec import AgentSpec
from media.call import CallInfo, Direction
from media.clock import Clock, MonotonicClock
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, frames_from_samples, samples_of
from media.speech import caller_speech
from media.virtual import VirtualCall, VirtualTransport
from media.wav import write_wav
from pipeline.engines import Engines
from pipeline.events import CallEnded, CallEvent, StateChanged, Transcript, TurnMetrics
from pipeline.session import CallSession
from pipeline.tts import TtsEngine

log = logging.getLogger(__name__)

REPLY_GAP_S = 0.6
"""The caller waits this long after the agent stops before speaking its next line."""
LINE_TIMEOUT_S = 45.0


def caller_voice(tts: TtsEngine, text: str) -> npt.NDArray[np.int16]:
    """`text` in the caller voice (`media.speech.caller_speech`) on the TTS engine's own Piper
    voice: not the agent's (pitched up, same tempo), and the same audio every time (Piper's
    noise off), so scripted calls and benchmarks are repeatable."""
    return caller_speech(tts.voice(tts.default_voice), text, speaker_id=tts.speaker_id)


@dataclass
class Turn:
    role: str
    text: str
    interrupted: bool = False
    marks: dict[str, float] = field(default_factory=dict)
    turn: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "text": self.text,
            "interrupted": self.interrupted,
            "marks": self.marks,
        }


@dataclass(frozen=True)
class CallerLine:
    """One caller line and when to speak it."""

    samples: npt.NDArray[np.int16]
    barge_in_after: float | None = None
    """Speak this long (s) after the agent starts speaking its reply (for the first line: the
    greeting), over it; None: once the agent has finished, after `pause_s`."""
    pause_s: float = REPLY_GAP_S
    backchannel: bool = False
    """Said over the agent's reply ("mhm"), which is expected to go on: the caller then waits
    for the reply to end instead of for an answer."""


@dataclass
class SimulationResult:
    turns: list[Turn]
    agent_audio: npt.NDArray[np.int16]
    ended: CallEnded | None
    call: VirtualCall
    events: list[CallEvent]
    event_times: list[float] = field(default_factory=list)
    """The clock time each of `events` was emitted at (same length)."""
    line_spans: list[tuple[float, float]] = field(default_factory=list)
    """Per line spoken: the clock times its first frame and the frame after its last were sent
    (lines the script never reached are missing)."""
    agent_frame_times: list[float] = field(default_factory=list)
    """The clock time each agent frame went out (a paused or stopped reply: a gap)."""

    def state_changes(self) -> list[tuple[float, str]]:
        """(clock time, new state) of every `StateChanged` of the call, in order."""
        return [
            (t, ev.state)
            for ev, t in zip(self.events, self.event_times, strict=True)
            if isinstance(ev, StateChanged)
        ]

    def turn_metrics(self) -> list[tuple[float, TurnMetrics]]:
        """(clock time, event) of every `TurnMetrics`: emitted at its turn's first frame out."""
        return [
            (t, ev)
            for ev, t in zip(self.events, self.event_times, strict=True)
            if isinstance(ev, TurnMetrics)
        ]


class _Caller:
    """The scripted far end: feeds frames on the clock and follows the agent's state."""

    def __init__(self, transport: VirtualTransport, clock: Clock) -> None:
        self._transport = transport
        self.clock = clock
        self.state = "thinking"
        self.changes = 0
        """State changes so far (one that came while a line's trailing silence was sent)."""
        self.changed = asyncio.Event()
        self.ended = asyncio.Event()
        self._queue: list[AudioFrame] = []
        self._done = asyncio.Event()
        self._seq = 0
        self._starting = False
        self.spans: list[tuple[float, float]] = []

    def on_event(self, ev: CallEvent) -> None:
        if isinstance(ev, StateChanged):
            self.state = ev.state
            self.changes += 1
            self.changed.set()
        elif isinstance(ev, CallEnded):
            self.ended.set()
            self.changed.set()

    async def wait_state(self, *states: str, limit_s: float = LINE_TIMEOUT_S) -> bool:
        deadline = self.clock.now() + limit_s
        while self.state not in states and not self.ended.is_set():
            self.changed.clear()
            left = deadline - self.clock.now()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return not self.ended.is_set()

    async def speak(self, samples: npt.NDArray[np.int16]) -> None:
        self._done.clear()
        self._starting = True
        self._queue.extend(frames_from_samples(samples))
        self._queue.append(AudioFrame.silence(-1))  # marker: the line has been sent
        await self._done.wait()

    async def pump(self) -> None:
        """Send one frame every 20 ms: the line being spoken, or silence."""
        next_at = self.clock.now()
        while not self.ended.is_set():
            frame = self._queue.pop(0) if self._queue else None
            now = self.clock.now()
            if frame is not None and self._starting:
                self._starting = False
                self.spans.append((now, now))
            if frame is not None and frame.seq == -1:
                self.spans[-1] = (self.spans[-1][0], now)
                self._done.set()
                frame = None
            pcm = frame.pcm if frame is not None else AudioFrame.silence().pcm
            await self._transport.source.send(AudioFrame(pcm, self._seq))
            self._seq += 1
            next_at += FRAME_SAMPLES / SAMPLE_RATE
            await self.clock.sleep_until(next_at)


def _call_info() -> CallInfo:
    """A fresh inbound call from the simulated caller to the agent."""
    return CallInfo(
        call_id=f"sim-{uuid.uuid4().hex[:12]}",
        tenant_id="demo",
        direction=Direction.INBOUND,
        from_uri="sip:caller@simulate",
        to_uri="sip:agent@simulate",
        transport="virtual",
    )


async def _converse(
    session: CallSession,
    caller: _Caller,
    call: VirtualCall,
    transport: VirtualTransport,
    script: Callable[[], Awaitable[None]],
) -> CallEnded:
    """Run the session and the caller's frame pump while `script()` runs; when it is
    done the caller hangs up (unless the call already ended). Both tasks end on every path."""
    pump = asyncio.create_task(caller.pump(), name="caller-pump")
    run = asyncio.create_task(session.run(), name="session")
    try:
        await script()
        if not caller.ended.is_set():
            await call.hangup("caller done")
            transport.source.close()
            call.remote_hangup()
        return await run
    finally:
        pump.cancel()
        run.cancel()
        await asyncio.gather(pump, run, return_exceptions=True)


async def simulate(
    engines: Engines,
    spec: AgentSpec,
    lines: Sequence[npt.NDArray[np.int16] | CallerLine],
    *,
    barge_in_after: float | None = None,
    clock: Clock | None = None,
    dtmf: dict[int, str] | None = None,
    agent: Agent | None = None,
) -> SimulationResult:
    """One call: the caller speaks `lines` in order (plain samples: once the agent finished,
    or with `barge_in_after` every line after the first that long after the agent started
    its reply; a `CallerLine` says for itself, the first line included)."""
    clock = clock or MonotonicClock()
    transport = VirtualTransport(clock)
    info = _call_info()
    call = VirtualCall(info)
    caller = _Caller(transport, clock)
    events: list[CallEvent] = []
    times: list[float] = []

    def on_event(ev: CallEvent) -> None:
        events.append(ev)
        times.append(clock.now())
        caller.on_event(ev)

    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
        access = LlmAccess.for_agent(  # simulate runs the operator's own spec files
            spec.llm, operator_agent=True, secrets={}, env=os.environ
        )
        ctx = AgentContext(call_id=info.call_id, tenant_id=info.tenant_id, http=http, llm=access)
        agent = agent or build_agent(spec, ctx)
        session = CallSession(
            info=info, transport=transport, call=call, agent=agent, spec=spec,
            engines=engines, clock=clock, on_event=on_event,
        )  # fmt: skip
        ended = await _converse(
            session,
            caller,
            call,
            transport,
            functools.partial(
                _script, caller, call, caller_lines(lines, barge_in_after), dtmf or {}
            ),
        )
    return SimulationResult(
        turns=_turns(events),
        agent_audio=samples_of(transport.sink.frames),
        ended=ended,
        call=call,
        events=events,
        event_times=times,
        line_spans=list(caller.spans),
        agent_frame_times=list(transport.sink.times),
    )


def caller_lines(
    lines: Sequence[npt.NDArray[np.int16] | CallerLine], barge_in_after: float | None = None
) -> list[CallerLine]:
    """Every line as a `CallerLine`: plain samples barge in `barge_in_after` seconds after the
    agent starts its previous reply, except the first (said once the greeting is over)."""
    return [
        line
        if isinstance(line, CallerLine)
        else CallerLine(line, barge_in_after=barge_in_after if i > 0 else None)
        for i, line in enumerate(lines)
    ]


async def _script(
    caller: _Caller,
    call: VirtualCall,
    lines: list[CallerLine],
    dtmf: dict[int, str],
) -> None:
    clock = caller.clock
    for i, line in enumerate(lines):
        if not await _await_cue(caller, line):
            return
        if i in dtmf:
            call.press(dtmf[i])
        changes = caller.changes
        await caller.speak(line.samples)
        if line.backchannel:
            continue  # the agent goes on: the next line waits for it as usual
        if caller.changes == changes or caller.state not in ("thinking", "agent_speaking"):
            caller.state = "sent"  # (else the node answered during the line's trailing silence)
        if not await caller.wait_state("thinking", "agent_speaking", limit_s=10.0):
            return
    await caller.wait_state("listening")
    await clock.sleep_until(clock.now() + REPLY_GAP_S)


async def _await_cue(caller: _Caller, line: CallerLine) -> bool:
    """Wait until `line` is due: once the agent finished (then `pause_s`), or `barge_in_after`
    into the agent's speech (the greeting's, before the first line). False: the call ended or
    the agent never got there."""
    clock = caller.clock
    if line.barge_in_after is None:
        if not await caller.wait_state("listening"):
            return False
        await clock.sleep_until(clock.now() + line.pause_s)
        return True
    if not await caller.wait_state("agent_speaking"):
        return False
    await clock.sleep_until(clock.now() + line.barge_in_after)
    return True


def _turns(events: list[CallEvent]) -> list[Turn]:
    turns: list[Turn] = []
    metrics: dict[int, dict[str, float]] = {}
    for ev in events:
        if isinstance(ev, TurnMetrics):
            metrics[ev.turn] = ev.marks
            for t in turns:
                if t.turn == ev.turn and t.role == "user":
                    t.marks = {k: v for k, v in ev.marks.items() if k in _USER_MARKS}
        elif isinstance(ev, Transcript) and ev.final:
            turn = Turn(ev.role, ev.text, ev.interrupted, turn=ev.turn)
            if ev.role == "user":
                # The caller went on after an early endpoint: the turn starts over as one.
                again = [i for i, t in enumerate(turns) if (t.role, t.turn) == ("user", ev.turn)]
                if again:
                    del turns[again[0] :]
            if ev.role == "agent" and ev.turn in metrics:
                turn.marks = dict(metrics[ev.turn])
            turns.append(turn)
    return turns


_USER_MARKS = {"speech_end", "endpoint", "final_transcript"}


def write_outputs(result: SimulationResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_wav(out_dir / "agent.wav", result.agent_audio, SAMPLE_RATE)
    doc = [t.as_json() for t in result.turns]
    (out_dir / "conversation.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
