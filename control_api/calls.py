"""The node's live browser calls: each runs in a task owned here, from admission to close.

A call's task hands the transport and call control to `CallHost.run_call`, forwards the
events it reports to the browser's data channel, and on every exit closes the peer
connection, releases the admission slot and counts the outcome.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from control_api.host import CallHost
from control_api.metrics import CALLS_ENDED
from media.webrtc import WebRtcCall
from pipeline.events import CallEnded, CallEvent

log = logging.getLogger(__name__)


class LiveCalls:
    """Owns the tasks of the calls the API placed; `shutdown()` ends them all."""

    def __init__(self, host: CallHost) -> None:
        self._host = host
        self._calls: dict[str, WebRtcCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> WebRtcCall | None:
        return self._calls.get(call_id)

    def start(self, call: WebRtcCall, agent: str) -> None:
        """Run an admitted, answered call until it ends. Its admission is released at the end."""
        if self._closed:
            raise RuntimeError("the API is shutting down")
        call_id = call.info.call_id
        self._calls[call_id] = call
        task = asyncio.get_running_loop().create_task(
            self._run(call, agent), name=f"call:{call_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: WebRtcCall, agent: str) -> None:
        info = call.info
        extra = {"call_id": info.call_id, "tenant_id": info.tenant_id, "agent": agent}
        outcome = "completed"

        def on_event(event: CallEvent) -> None:
            nonlocal outcome
            if isinstance(event, CallEnded):
                outcome = event.reason
            call.send_message(msgspec.json.encode(event).decode())

        log.info("call started", extra=extra)
        try:
            await self._host.run_call(info, agent, call.transport, call, on_event)
        except asyncio.CancelledError:
            outcome = "interrupted"
            raise
        except Exception:
            outcome = "failed"
            log.exception("call failed", extra=extra)
        finally:
            try:
                await call.close(outcome)
            finally:
                self._calls.pop(info.call_id, None)
                self._host.release(info.call_id)
                CALLS_ENDED.labels(outcome=outcome, transport=info.transport).inc()
                log.info("call ended", extra={**extra, "outcome": outcome})

    async def hangup(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            await call.hangup("api")

    async def shutdown(self) -> None:
        """Cancel every call's task and wait until each has closed its call."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
