"""`voicenode-bench amd`: answering-machine detection measured on the generated set
(`bench.amd_set`), in process.

Each clip is one outbound call through the node's own `CallSession` (its screening,
`pipeline/screening.py`, and detector, `pipeline/amd.py`) on the node's real engines (Silero
VAD, the Whisper recogniser, Piper), on a virtual clock: the far end's audio goes in one 20 ms
frame at a time, and every time below is **stream time** (audio time from the answer), not
the wall time of a loaded machine. The engines' own work is made to take a fixed stream time
instead (`EngineTimes`): each greeting transcription `stt_ms` after its audio is in, each
synthesis that is not served from the TTS cache `tts_ms`; the measured wall times of both are
reported beside them.

Per clip: the decision (result, reason, when), for a machine with a beep how long after the
beep's end the voicemail message started, and for a person the gap from the end of their first
words to the agent greeting's first audio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from agents.fake import ScriptedAgent
from agents.spec import AgentSpec
from bench.amd_set import Clip, Render
from media.call import CallInfo, Direction
from media.clock import VirtualClock
from media.frames import frames_from_samples
from media.virtual import VirtualCall, VirtualTransport
from pipeline.engines import Engines
from pipeline.events import AmdDetected, CallEvent
from pipeline.session import CallSession

FRAME_S = 0.02
GREETING = "$hello $name, this is Bright Smile Dental, calling about your appointment tomorrow."
MESSAGE = "Hi $name, this is Bright Smile Dental about your appointment. Please call us back."
HELLOS = ("Hi", "Hello", "Good morning", "Good afternoon")
NAMES = (
    "Ann", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry", "Iris", "Jack",
    "Kate", "Liam", "Mona", "Nick", "Olga", "Paul", "Rosa", "Sam", "Tina", "Victor",
)  # fmt: skip
"""Every call's greeting and message differ (a contact's name, as a campaign's do): each one
is synthesized cold, not served from an earlier call's TTS cache."""
SETTLE_LIMIT_S = 120.0
"""The longest wall time one engine job may take before the run gives up on it."""


def bench_spec(n: int, **amd: object) -> AgentSpec:
    """Call `n`'s agent: `[amd]` defaults, its own greeting and voicemail message."""
    name, hello = NAMES[n % len(NAMES)], HELLOS[n // len(NAMES) % len(HELLOS)]
    greeting = string.Template(GREETING).substitute(hello=hello, name=name)
    message = string.Template(MESSAGE).substitute(name=name)
    raw = {
        "name": "bench-amd",
        "kind": "llm",
        "llm": {},
        "greeting": greeting,
        "amd": {"on_machine": "leave_message", "voicemail_message": message, **amd},
    }
    return msgspec.convert(raw, AgentSpec)


@dataclass
class EngineTimes:
    """The engines behind the session, each job charged a fixed stream time."""

    clock: VirtualClock
    stt_ms: float
    tts_ms: float
    busy: int = 0
    stt_wall_ms: list[float] = field(default_factory=list)
    tts_wall_ms: list[float] = field(default_factory=list)

    async def run(self, job: Any, walls: list[float], charge_ms: float) -> Any:
        self.busy += 1
        started = time.perf_counter()
        try:
            result = await job
        finally:
            self.busy -= 1
        walls.append(1000.0 * (time.perf_counter() - started))
        if charge_ms > 0:
            await self.clock.sleep_until(self.clock.now() + charge_ms / 1000.0)
        return result

    async def settle(self) -> None:
        """Wait (wall time) for the jobs in flight, the clock standing still."""
        deadline = time.monotonic() + SETTLE_LIMIT_S
        await self.clock.advance(0)
        while self.busy:
            if time.monotonic() > deadline:
                raise TimeoutError("an engine job took longer than the bench allows")
            await asyncio.sleep(0.002)
            await self.clock.advance(0)


class TimedStt:
    def __init__(self, inner: Any, times: EngineTimes) -> None:
        self._inner, self._times = inner, times

    async def transcribe(
        self, audio: npt.NDArray[np.int16], *, final: bool, prefix: str = "", context: str = ""
    ) -> str | None:
        job = self._inner.transcribe(audio, final=final, prefix=prefix, context=context)
        t = self._times
        text: str | None = await t.run(job, t.stt_wall_ms, t.stt_ms)
        return text


class TimedTts:
    def __init__(self, inner: Any, times: EngineTimes) -> None:
        self._inner, self._times = inner, times

    async def synthesize(self, text: str, voice: str = "") -> npt.NDArray[np.int16]:
        t = self._times
        charge = 0.0 if self._inner.cached(text, voice) else t.tts_ms
        audio: npt.NDArray[np.int16] = await t.run(
            self._inner.synthesize(text, voice), t.tts_wall_ms, charge
        )
        return audio


@dataclass
class Outcome:
    id: str
    kind: str
    part: str
    voice: str
    result: str = "none"
    reason: str = ""
    decided_ms: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    ended: str = ""
    message_after_beep_ms: float | None = None
    """A machine with a beep: the voicemail message's first frame out after the beep's end."""
    message_after_greeting_ms: float | None = None
    """A machine: its first frame out after the greeting's last word."""
    greeting_gap_ms: float | None = None
    """A person: the agent greeting's first frame out after their first words ended."""
    beep_hz: float | None = None
    beep_ms: int | None = None

    @property
    def correct(self) -> bool:
        return self.result == self.kind


async def run_clip(clip: Clip, engines: Engines, spec: AgentSpec, times: EngineTimes) -> Outcome:
    """One outbound call answered by `clip`; its outcome in stream time."""
    clock = times.clock
    transport = VirtualTransport(clock)
    info = CallInfo(call_id=clip.id, tenant_id="bench", direction=Direction.OUTBOUND)
    call = VirtualCall(info)
    events: list[CallEvent] = []
    session = CallSession(
        info=info,
        transport=transport,
        call=call,
        agent=ScriptedAgent(greeting=spec.greeting),
        spec=spec,
        engines=engines,
        clock=clock,
        on_event=events.append,
    )
    start = clock.now()
    task = asyncio.create_task(session.run(), name=f"bench-amd:{clip.id}")
    await clock.advance(0)
    for frame in frames_from_samples(clip.audio):
        if task.done() or transport.sink.frames:
            break
        await clock.advance(FRAME_S)  # a frame reaches the node once its 20 ms are over
        await transport.source.send(frame)
        await times.settle()
    out = _outcome(clip, events, transport.sink.times, start)
    if not task.done():
        call.remote_hangup()
        transport.source.close()
    for _ in range(int(SETTLE_LIMIT_S / FRAME_S)):  # a message still going out, then the end
        if task.done():
            break
        await clock.advance(FRAME_S)
        await times.settle()
    ended = await asyncio.wait_for(task, SETTLE_LIMIT_S)
    out.ended = ended.reason
    return out


def _outcome(clip: Clip, events: list[CallEvent], sent: list[float], start: float) -> Outcome:
    beep = clip.beep
    out = Outcome(
        id=clip.id,
        kind=clip.kind,
        part=clip.part,
        voice=clip.voice,
        beep_hz=beep.hz if beep else None,
        beep_ms=beep.ms if beep else None,
    )
    amd = next((e for e in events if isinstance(e, AmdDetected)), None)
    if amd is not None:
        out.result, out.reason, out.decided_ms = amd.result, amd.reason, amd.decided_ms
        out.evidence = msgspec.to_builtins(amd.evidence)
    if not sent:
        return out
    first = sent[0] - start  # written when its 20 ms start going out
    if amd is not None and amd.result == "machine":
        out.message_after_greeting_ms = round(1000.0 * (first - clip.greeting_end_s), 1)
        if clip.beep_end_s is not None:
            out.message_after_beep_ms = round(1000.0 * (first - clip.beep_end_s), 1)
    else:
        out.greeting_gap_ms = round(1000.0 * (first - clip.speech_end_s), 1)
    return out


def timed_engines(engines: Engines, times: EngineTimes) -> Engines:
    return dataclasses.replace(
        engines, stt=TimedStt(engines.stt, times), tts=TimedTts(engines.tts, times)
    )


async def run_set(
    clips: Sequence[Clip],
    engines: Engines,
    *,
    stt_ms: float,
    tts_ms: float,
    progress: bool = True,
) -> tuple[list[Outcome], EngineTimes]:
    times = EngineTimes(VirtualClock(), stt_ms, tts_ms)
    timed = timed_engines(engines, times)
    outcomes = []
    for n, clip in enumerate(clips):
        out = await run_clip(clip, timed, bench_spec(n), times)
        outcomes.append(out)
        if progress:
            mark = "ok " if out.correct else "BAD"
            print(f"{mark} {out.id:28} {out.result:8} {out.reason:16} {out.decided_ms} ms")
    return outcomes, times


def voices(engines: Engines) -> dict[str, Render]:
    """The far ends' voices: Piper (the caller voice on the engine's voice, `media.speech`)
    and espeak-ng in two voices."""
    from bench.amd_set import espeak_as
    from media.speech import CallerVoice, espeak

    tts: Any = engines.tts
    piper = CallerVoice(tts.voice(tts.default_voice), speaker_id=tts.speaker_id)
    return {
        "piper": piper,
        "espeak": espeak,
        "espeak-f": lambda text: espeak_as(text, "en-us+f3", 175),
    }
