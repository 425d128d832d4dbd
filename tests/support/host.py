"""A fake CallHost: admits through a real `Admission`, echoes the caller's audio back, and
reports a scripted turn (transcripts both sides, turn latency) once it has heard speech.

Agents, numbers and quotas come from a real store (`temp_store()`: SQLite in a temporary
directory, migrated and seeded), attached by `serve_node` or `attach_store`."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from config.schema import Settings
from control_api.host import AgentRef, NumberRoute, split_pinned
from control_api.quotas import Quotas, TenantQuota
from control_api.store import Store, open_store
from control_api.store import agents as agent_rows
from control_api.store import tenants as tenant_rows
from control_api.store.crypto import SecretBox, new_key
from control_api.store.directory import Directory
from control_api.store.migrate import migrate
from control_api.store.seed import file_specs, seed
from control_api.store.tenants import quota_lookup
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
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admission = Admission(max_calls, retry_after_full_s=3, retry_after_draining_s=17)
        self._agents = agents
        self._store = store
        self.quotas = Quotas(self._quota, clock)
        self.pinned: dict[str, AgentRef] = {}
        """The agent version each call ran (by call id)."""
        self._ready = ready
        self.end_after_frames = end_after_frames
        self.started: asyncio.Queue[CallInfo] = asyncio.Queue()
        self.finished: asyncio.Queue[str] = asyncio.Queue()
        self.inbound_frames: dict[str, int] = {}
        self.recording_choices: dict[str, str] = {}
        """`record_call`'s choices of the calls being placed (forgotten at `release`)."""
        self.recorded_as: dict[str, str | None] = {}
        """The recording choice each call ran with (by call id)."""

    def record_call(self, call_id: str, recording: str) -> None:
        self.recording_choices[call_id] = recording

    def release(self, call_id: str) -> None:
        super().release(call_id)
        self.recording_choices.pop(call_id, None)

    @property
    def ready(self) -> bool:
        return self._ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self._ready = value

    @property
    def has_store(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("FakeHost has no store: use serve_node() or attach_store()")
        return self._store

    async def attach_store(self, store: Store) -> None:
        """Use `store`, adding the `agents` (tenant, name) pairs it lacks (tenants created,
        each agent a copy of the embedded receptionist)."""
        self._store = store
        body = file_specs()["receptionist"]
        async with store.session() as session:
            for tenant_id, name in sorted(self._agents):
                if await tenant_rows.get_tenant(session, tenant_id) is None:
                    await tenant_rows.create_tenant(session, tenant_id, tenant_id=tenant_id)
                if await agent_rows.get_agent(session, tenant_id, name) is None:
                    text = body.replace('name = "receptionist"', f'name = "{name}"', 1)
                    await agent_rows.create_agent(session, tenant_id, name, text)

    async def _quota(self, tenant_id: str) -> TenantQuota:
        return await quota_lookup(self.store)(tenant_id)

    async def find_agent(
        self, tenant_id: str, name: str, version: int | None = None
    ) -> AgentRef | None:
        return await Directory(self.store).find_agent(tenant_id, name, version)

    async def find_number(self, number: str) -> NumberRoute | None:
        return await Directory(self.store).find_number(number)

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        name, version = split_pinned(agent)
        ref = await self.find_agent(info.tenant_id, name, version)
        if ref is None:
            raise LookupError(f"no agent {agent!r} for tenant {info.tenant_id!r}")
        self.pinned[info.call_id] = ref
        self.recorded_as[info.call_id] = self.recording_choices.get(info.call_id)
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
async def temp_store(url: str = "") -> AsyncIterator[Store]:
    """A migrated store with the embedded defaults: at `url`, or SQLite in a temporary
    directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="voicenode-store-") as folder:
        store = open_store(
            url or f"sqlite+aiosqlite:///{Path(folder) / 'voicenode.db'}", SecretBox(new_key())
        )
        try:
            await migrate(store)
            await seed(store, file_specs(), "receptionist")
            yield store
        finally:
            await store.close()


@asynccontextmanager
async def fake_host_factory(settings: Settings) -> AsyncIterator[FakeHost]:
    async with temp_store(settings.store.url) as store:
        host = FakeHost(max_calls=settings.node.max_calls)
        await host.attach_store(store)
        yield host
