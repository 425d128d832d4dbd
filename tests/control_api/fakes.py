"""A fake CallHost: admits through a real `Admission`, echoes the caller's audio back, and
reports a scripted turn (transcripts both sides, turn latency) once it has heard speech."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np

from config.schema import Settings
from media.call import Call, CallInfo
from media.transport import Transport
from pipeline.events import CallEnded, EventCallback, StateChanged, Transcript, TurnMetrics
from voicenode.admission import Admission, AdmittingHost

USER_TEXT = "hello from the caller"
AGENT_TEXT = "hello, this is the fake agent"
VOICE_TO_VOICE_MS = 321.0
# Frames (20 ms) louder than this count as speech; after this many, the scripted turn is sent.
SPEECH_RMS = 300.0
SPEECH_FRAMES = 10


class FakeHost(AdmittingHost):
    def __init__(
        self,
        *,
        max_calls: int = 2,
        agents: frozenset[tuple[str, str]] = frozenset({("demo", "receptionist")}),
        ready: bool = True,
        end_after_frames: int | None = None,
    ) -> None:
        self.admission = Admission(max_calls, retry_after_full_s=3, retry_after_draining_s=17)
        self._agents = agents
        self._ready = ready
        self.end_after_frames = end_after_frames
        self.started: asyncio.Queue[CallInfo] = asyncio.Queue()
        self.finished: asyncio.Queue[str] = asyncio.Queue()
        self.inbound_frames: dict[str, int] = {}

    @property
    def ready(self) -> bool:
        return self._ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self._ready = value

    def has_agent(self, tenant_id: str, agent: str) -> bool:
        return (tenant_id, agent) in self._agents

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        self.started.put_nowait(info)
        on_event(StateChanged("listening"))
        frames = voiced = 0
        try:
            async for frame in transport.source.frames():
                await transport.sink.write(frame)  # echo
                frames += 1
                self.inbound_frames[info.call_id] = frames
                rms = float(np.sqrt(np.mean(frame.samples.astype(np.float64) ** 2)))
                voiced += rms > SPEECH_RMS
                if voiced == SPEECH_FRAMES:
                    voiced += 1
                    self._scripted_turn(on_event)
                if self.end_after_frames is not None and frames >= self.end_after_frames:
                    on_event(CallEnded(reason="completed", duration_s=frames * 0.02))
                    return
            on_event(CallEnded(reason="hangup", duration_s=frames * 0.02))
        finally:
            self.finished.put_nowait(info.call_id)

    @staticmethod
    def _scripted_turn(on_event: EventCallback) -> None:
        on_event(Transcript(role="user", text=USER_TEXT.split(",")[0][:5], final=False, turn=1))
        on_event(Transcript(role="user", text=USER_TEXT, final=True, turn=1))
        on_event(StateChanged("thinking"))
        on_event(StateChanged("agent_speaking"))
        on_event(Transcript(role="agent", text=AGENT_TEXT, final=True, turn=1))
        on_event(TurnMetrics(turn=1, marks={"stt_final": 0.1}, voice_to_voice_ms=VOICE_TO_VOICE_MS))
        on_event(StateChanged("listening"))


@asynccontextmanager
async def fake_host_factory(settings: Settings) -> AsyncIterator[FakeHost]:
    yield FakeHost(max_calls=settings.node.max_calls)
