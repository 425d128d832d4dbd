"""The node: engines, agents and admission behind the control API's `CallHost` seam.

Models load in the background after start (readiness flips when they are in); until then and
while draining, new calls are refused. Each admitted call gets a fresh agent and a
`CallSession` on the real clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from agents.base import AgentContext
from agents.catalog import load_specs
from agents.factory import build_agent
from agents.spec import AgentSpec
from config import Settings
from control_api.host import OverCapacity
from media.call import Call, CallInfo
from media.clock import MonotonicClock
from media.transport import Transport
from pipeline.engines import Engines
from pipeline.events import EventCallback
from pipeline.session import CallSession
from voicenode.admission import Admission, AdmittingHost

log = logging.getLogger(__name__)

DEMO_TENANT = "demo"


class Node(AdmittingHost):
    """The real `CallHost`."""

    def __init__(self, settings: Settings, specs: dict[str, AgentSpec], http: httpx.AsyncClient):
        self.settings = settings
        self.specs = specs
        self.admission = Admission(settings.node.max_calls)
        self._http = http
        self.engines: Engines | None = None
        self._loading: asyncio.Task[Engines] | None = None
        self.load_error: BaseException | None = None

    async def start(self) -> None:
        self._loading = asyncio.create_task(Engines.load(self.settings), name="engines-load")
        self._loading.add_done_callback(self._loaded)

    def _loaded(self, task: asyncio.Task[Engines]) -> None:
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
        if self.engines is not None:
            await asyncio.to_thread(self.engines.close)

    # ---- CallHost ----

    @property
    def ready(self) -> bool:
        return self.engines is not None

    def has_agent(self, tenant_id: str, agent: str) -> bool:
        return tenant_id == DEMO_TENANT and agent in self.specs

    def admit(self, call_id: str) -> None:
        if self.engines is None:
            raise OverCapacity("loading", 5)
        super().admit(call_id)

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        engines = await self.wait_ready()
        spec = self.specs[agent]
        ctx = AgentContext(
            call_id=info.call_id, tenant_id=info.tenant_id, http=self._http, env=os.environ
        )
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
        await session.run()


@asynccontextmanager
async def open_node(settings: Settings) -> AsyncIterator[Node]:
    specs = load_specs(settings.agents.dir or None)
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
        node = Node(settings, specs, http)
        await node.start()
        try:
            yield node
        finally:
            await node.close()


def run_node(settings: Settings) -> int:
    from voicenode.serve import main_serve

    try:
        return main_serve(settings, open_node)
    except OSError as exc:
        print(f"voicenode: cannot serve on {settings.http.host}:{settings.http.port}: {exc}")
        return 1
