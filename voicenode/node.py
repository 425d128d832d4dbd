"""The node: engines, the store (tenants, agents, numbers), tenant quotas and admission behind
the control API's `CallHost` seam.

Models load in the background after start (readiness flips when they are in); until then and
while draining, new calls are refused. Each admitted call gets a fresh agent and a
`CallSession` on the real clock, running the agent version pinned when the call started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import httpx
import msgspec

from agents.base import AgentContext
from agents.factory import build_agent
from agents.spec import AgentSpec, RecordingMode
from agents.urlguard import guarded_client
from agents.variables import OnMachine, for_call
from config import Settings
from control_api.analytics import Analytics, open_analytics
from control_api.host import AgentRef, NumberRoute, split_pinned
from control_api.quotas import Quotas, tenant_cap
from control_api.recordings.live import LiveRecordings, node_recordings
from control_api.recordings.retention import open_recording_retention
from control_api.refusals import OverCapacity
from control_api.store import Store
from control_api.store.directory import Directory
from control_api.store.redaction import redaction_kinds
from control_api.store.secrets import llm_access_for
from control_api.store.seed import node_store
from control_api.store.tenants import quota_lookup
from core.errors import StoreError
from media.call import Call, CallInfo
from media.clock import MonotonicClock
from media.transport import Transport
from pipeline.devices import DeviceError, wants_gpu
from pipeline.engines import Engines
from pipeline.events import EventCallback
from pipeline.session import CallSession
from voicenode.admission import Admission, AdmittingHost
from voicenode.dialler import Dialler, node_dialler
from voicenode.listeners import open_listeners
from voicenode.live import Live
from voicenode.tracing import open_call_tracing

log = logging.getLogger(__name__)


class Node(AdmittingHost):
    """The real `CallHost`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        http: httpx.AsyncClient,
        *,
        quotas: Quotas | None = None,
    ) -> None:
        self.live = Live(settings)
        """The settings the node runs: a reload replaces them; new calls read them here."""
        self.store = store
        cap = tenant_cap(settings.node.max_calls, settings.node.tenant_share)
        self.quotas = quotas or Quotas(quota_lookup(store), tenant_cap=cap)
        self.directory = Directory(store)
        self.admission = Admission(settings.node.max_calls)
        self.calls.use_dialplan(settings.dialplan)
        self._http = http
        self._clients: list[httpx.AsyncClient] = []
        """The clients `use_http` gave the node (not the one it was made with: its opener's)."""
        self.engines: Engines | None = None
        self._loading: asyncio.Future[Engines] | None = None
        self.load_error: BaseException | None = None
        self._running: dict[str, AgentRef] = {}
        self.analytics: Analytics | None = None
        self.listeners: list[object] = []
        """The telephony listeners serving (the SIP user agent, the AudioSocket server)."""
        self.recordings: LiveRecordings = node_recordings(
            settings.recording, settings.node.data_dir, MonotonicClock()
        )
        """The recordings of calls whose agent asks for them (`recording`), as `[recording]`
        says (format, local or S3)."""
        self.call_variables: dict[str, Mapping[str, str]] = {}
        """Template variables of outbound calls being placed (a campaign contact's), by call
        id: filled into the agent's texts (`agents.variables`)."""
        self.call_on_machine: dict[str, OnMachine] = {}
        """A campaign's voicemail choice for its calls, by call id (over `[amd] on_machine`)."""
        self._call_recording: dict[str, RecordingMode] = {}
        """`POST /v1/calls`' recording choice for the calls it places, by call id."""
        self._release_hooks: list[Callable[[str], None]] = []
        self.dialler: Dialler | None = None
        """The campaign dialler, while `open_node` runs it."""

    @property
    def settings(self) -> Settings:
        return self.live.value

    def use_http(self, client: httpx.AsyncClient) -> None:
        """New calls' agents (and the next webhook deliveries) use `client`, built for the
        current `analytics.url_allowlist`; live calls keep the client they have. The node
        owns it from now on and closes it when it closes (after its calls and analytics)."""
        self._http = client
        self._clients.append(client)

    def tenant_urls(self) -> tuple[tuple[str, ...], httpx.AsyncClient]:
        """The URL allowlist for tenant URLs and the client that enforces it, read together."""
        return self.settings.analytics.url_allowlist, self._http

    async def start(self, engines: Engines | None = None) -> None:
        """Load the models in the background, or take `engines` already loaded (tests share
        one set across nodes). When a setting asks for a GPU the load is waited for: a
        `DeviceError` (no device, no CUDA libraries) is raised, the node does not start."""
        if engines is not None:
            self._loading = asyncio.get_running_loop().create_future()
            self._loading.set_result(engines)
            self.engines = engines
            return
        self._loading = asyncio.create_task(Engines.load(self.settings), name="engines-load")
        self._loading.add_done_callback(self._loaded)
        if wants_gpu(self.settings):  # a GPU asked for and unusable stops the start (exit 2)
            await asyncio.wait({self._loading})
            if isinstance(error := self._loading.exception(), DeviceError):
                raise error

    def _loaded(self, task: asyncio.Future[Engines]) -> None:
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            self.load_error = exc
            log.error("loading the models failed", exc_info=exc)
            return
        self.engines = task.result()

    async def wait_ready(self) -> Engines:
        if self._loading is None:
            raise RuntimeError("the node was not started")
        return await asyncio.shield(self._loading)

    async def close(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        if self.engines is not None and isinstance(self._loading, asyncio.Task):
            await asyncio.to_thread(self.engines.close)
        for client in self._clients:
            await client.aclose()
        self._clients.clear()

    # ---- CallHost ----

    @property
    def ready(self) -> bool:
        return self.engines is not None

    async def find_agent(
        self, tenant_id: str, name: str, version: int | None = None
    ) -> AgentRef | None:
        return await self.directory.find_agent(tenant_id, name, version)

    async def find_number(self, number: str) -> NumberRoute | None:
        return await self.directory.find_number(number)

    def admit(self, call_id: str) -> None:
        if self.engines is None:
            raise OverCapacity("loading", 5)
        super().admit(call_id)

    def release(self, call_id: str) -> None:
        super().release(call_id)
        self._call_recording.pop(call_id, None)
        for hook in list(self._release_hooks):
            hook(call_id)

    def record_call(self, call_id: str, recording: RecordingMode) -> None:
        self._call_recording[call_id] = recording

    def on_release(self, hook: Callable[[str], None]) -> Callable[[], None]:
        """`hook(call_id)` after each call's admission is given back (the dialler's end of a
        call, answered or not); returns the unsubscribe function."""
        self._release_hooks.append(hook)
        return lambda: self._release_hooks.remove(hook) if hook in self._release_hooks else None

    def campaigns_changed(self) -> None:
        """`control_api.campaigns.notify.Bell`: the dialler looks at the campaigns now."""
        if self.dialler is not None:
            self.dialler.wake()

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        engines = await self.wait_ready()
        name, version = split_pinned(agent)
        ref = await self.find_agent(info.tenant_id, name, version)
        if ref is None:
            raise LookupError(f"no agent {agent!r} for tenant {info.tenant_id!r}")
        campaign = self.call_variables.get(info.call_id), self.call_on_machine.get(info.call_id)
        spec = for_call(ref.spec, *campaign)
        if (recording := self._call_recording.get(info.call_id)) is not None:
            spec = msgspec.structs.replace(spec, recording=recording)
        allowlist, http = self.tenant_urls()
        access = await llm_access_for(
            self.store,
            info.tenant_id,
            spec,
            operator_agent=ref.operator,
            env=os.environ,
            url_allowlist=allowlist,
        )
        pii = await redaction_kinds(self.store, info.tenant_id)
        ref = dataclasses.replace(ref, llm_access=access, pii=pii)
        ctx = AgentContext(
            call_id=info.call_id,
            tenant_id=info.tenant_id,
            http=http,
            url_allowlist=allowlist,
            env=os.environ if ref.operator else {},
            llm=access,
            pii=pii,
        )
        transport, spec = self._recorded(info, transport, spec)
        session = CallSession(
            info=info,
            transport=transport,
            call=call,
            agent=build_agent(spec, ctx),
            spec=spec,
            engines=engines,
            clock=MonotonicClock(),
            on_event=on_event,
        )
        self._running[info.call_id] = ref
        try:
            await session.run()
        finally:
            self._running.pop(info.call_id, None)
            await self._store_recording(info)

    def _recorded(
        self, info: CallInfo, transport: Transport, spec: AgentSpec
    ) -> tuple[Transport, AgentSpec]:
        """The call's transport, recorded if its agent asks (`recording`), and its spec with
        the disclosure before the greeting (`on_consent`)."""
        if spec.recording == "off":
            return transport, spec
        try:
            transport = self.recordings.start(info, transport)
        except ValueError:  # ids that cannot name a file: the call goes on unrecorded
            log.error(
                "call not recorded", extra={"call_id": info.call_id, "tenant_id": info.tenant_id}
            )
        return transport, with_disclosure(spec)

    async def _store_recording(self, info: CallInfo) -> None:
        """The call's recording (if any) into the store; a failure leaves the spool file, which
        the next start stores."""
        try:
            await self.recordings.finish(info)
        except (OSError, StoreError) as exc:
            log.error(
                "recording not stored",
                extra={
                    "call_id": info.call_id,
                    "tenant_id": info.tenant_id,
                    "error": type(exc).__name__,
                },
            )

    def agent_of(self, info: CallInfo) -> AgentRef | None:
        """The agent version a live call runs (analytics records it)."""
        return self._running.get(info.call_id)


def with_disclosure(spec: AgentSpec) -> AgentSpec:
    """`recording = "on_consent"`: the disclosure line said first, as the greeting's start."""
    if spec.recording != "on_consent":
        return spec
    greeting = " ".join(p for p in (spec.recording_disclosure.strip(), spec.greeting) if p)
    return msgspec.structs.replace(spec, greeting=greeting)


@asynccontextmanager
async def open_node(settings: Settings, engines: Engines | None = None) -> AsyncIterator[Node]:
    """The node with its listeners; `engines` already loaded are shared, not closed."""
    async with (
        node_store(settings) as store,
        guarded_client(settings.analytics.url_allowlist) as http,
    ):
        node = Node(settings, store, http)
        await node.recordings.recover()  # what a crash left in the spool
        await node.start(engines)
        try:
            async with (
                open_call_tracing(node.calls, node.agent_of),  # off unless OTEL_* asks
                open_analytics(
                    settings,
                    store,
                    node.calls,
                    MonotonicClock(),
                    agents=node.agent_of,
                    http=None if settings.analytics.allow_private_urls else http,
                    urls=None if settings.analytics.allow_private_urls else node.tenant_urls,
                ) as analytics,
                open_recording_retention(
                    store,
                    node.recordings.store,
                    settings.recording.retention_days,
                    MonotonicClock(),
                ),
            ):
                node.analytics = analytics
                # Listeners stop (and LiveCalls shut down) before analytics records the end.
                async with (
                    open_listeners(settings, node) as listeners,
                    node_dialler(node) as node.dialler,
                ):
                    node.listeners = listeners
                    yield node
                await node.calls.shutdown()
        finally:
            await node.close()
