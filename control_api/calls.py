"""The node's live calls, whatever carries them: each runs in a task owned here, from admission
to close.

A transport (WebRTC signalling, the SIP user agent, the AudioSocket server) hands an admitted,
answered call to `LiveCalls.start` as a `LiveCall`. Its task hands the transport and call
control to the node's `CallRunner.run_call` (`control_api.host.CallHost` is one), forwards the
events it reports (to the call itself, e.g. the browser's data channel, and to every
subscriber), and on every exit closes the call, releases the admission slot and counts the
outcome. `CallRunner` is defined here, not in `control_api.host`, so that this module imports
nothing from the host module (which imports `LiveCalls`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from config.schema import DialPlanSettings
from control_api.metrics import CALLS_ENDED
from core.tasks import OwnedTasks
from media.call import Call, CallControlError, CallInfo, CallSignal
from media.dialplan import DestinationInvalid, DestinationRefused, DialGuard
from media.transport import Transport
from pipeline.events import CallEnded, CallEvent, EventCallback

log = logging.getLogger(__name__)

EventListener = Callable[[CallInfo, CallEvent], None]
"""Called with every event of every live call (in the event loop; must not block)."""


class CallRunner(Protocol):
    """What `LiveCalls` needs from the node: running a call's conversation, and giving back its
    admission once the call is over. `CallHost` extends it."""

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        """Run the conversation; return when it ends (the caller then hangs up and closes).

        `agent` is `AgentRef.pinned` (`name@version`): the call runs that version even if the
        agent changes meanwhile; a bare name runs the current version."""
        ...

    def release(self, call_id: str) -> None:
        """Give back the call's admission and its tenant quota slot (idempotent)."""
        ...


class LiveCall(Protocol):
    """What `LiveCalls` runs: call control, its audio, and how to end it."""

    @property
    def info(self) -> CallInfo: ...

    @property
    def control(self) -> Call:
        """Call control handed to the session (hang up, transfer, DTMF, signals)."""
        ...

    @property
    def transport(self) -> Transport: ...

    def publish(self, event: CallEvent) -> None:
        """Show a call event to the far end where the transport can (a no-op elsewhere)."""
        ...

    async def close(self, outcome: str) -> None:
        """Hang up if still up and release everything (idempotent)."""
        ...


@runtime_checkable
class MediaPending(Protocol):
    """A call whose media may still be connecting when it starts (WebRTC): the agent starts
    only once `wait_media()` says it is up."""

    async def wait_media(self) -> bool:
        """True once the media is up; False when the call closed first."""
        ...


ENDED_OUTCOMES = frozenset(
    {
        "completed",
        "hangup",
        "transferred",
        "no_input",
        "max_duration",
        "failed",
        "interrupted",
        "machine",  # an answering machine, hung up on (`[amd]`, pipeline/screening.py)
        "voicemail",  # an answering machine that got the voicemail message
    }
)
"""The `outcome` label values of `voicenode_calls_ended_total`: a fixed set, so no reason an
agent or a spec gives (a flow's `end = "..."`) becomes a label; anything else is `other`."""


class LiveCalls:
    """Owns the tasks of the node's calls; `shutdown()` ends them all."""

    def __init__(self, host: CallRunner) -> None:
        self._host = host
        self._calls: dict[str, LiveCall] = {}
        self._tasks = OwnedTasks(log=log, failed="call task failed")
        self._listeners: list[EventListener] = []
        self._closed = False
        self.dialplan = DialGuard()
        """Where this node's outbound calls and transfers may go (`use_dialplan`)."""

    def use_dialplan(
        self, settings: DialPlanSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Apply the operator's `[dialplan]` (the app does, with the node's settings)."""
        self.dialplan = DialGuard(settings, clock)

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> LiveCall | None:
        return self._calls.get(call_id)

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Receive every call's events; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def start(self, call: LiveCall, agent: str) -> asyncio.Task[None]:
        """Run an admitted, answered call until it ends. Its admission is released at the end."""
        if self._closed:
            raise RuntimeError("the node is shutting down")
        call_id = call.info.call_id
        self._calls[call_id] = call
        return self._tasks.spawn(self._run_connected(call, agent), f"call:{call_id}")

    async def _run_connected(self, call: LiveCall, agent: str) -> None:
        """`_run` once the call's media is up: a call whose media never connects (a WebRTC
        offer nobody completes) ends without the agent ever starting. Either way the call's
        admission is released here, once it has closed."""
        connected = False
        try:
            connected = not isinstance(call, MediaPending) or await call.wait_media()
            if connected:
                await self._run(call, agent)
        finally:
            try:
                if not connected:
                    await call.close("not connected")
            finally:
                self._calls.pop(call.info.call_id, None)
                self._host.release(call.info.call_id)
                if not connected:
                    log.info("call never connected", extra={"call_id": call.info.call_id})

    async def _run(self, call: LiveCall, agent: str) -> None:
        info = call.info
        extra = {
            "call_id": info.call_id,
            "tenant_id": info.tenant_id,
            "agent": agent,
            "transport": info.transport,
        }
        outcome = "completed"

        def on_event(event: CallEvent) -> None:
            nonlocal outcome
            if isinstance(event, CallEnded):
                outcome = event.reason
            call.publish(event)
            for listener in list(self._listeners):
                try:
                    listener(info, event)
                except Exception:
                    log.exception("call event listener failed", extra=extra)

        log.info("call started", extra=extra)
        try:
            control = PlannedCall(call.control, info, self)
            await self._host.run_call(info, agent, call.transport, control, on_event)
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
                label = outcome if outcome in ENDED_OUTCOMES else "other"
                CALLS_ENDED.labels(outcome=label, transport=info.transport).inc()
                log.info("call ended", extra={**extra, "outcome": outcome})

    async def hangup(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            await call.control.hangup("api")

    async def transfer(self, call_id: str, target: str) -> None:
        """Blind-transfer a live call to `target` if its tenant's dial plan allows it:
        `DestinationInvalid`, `DestinationRefused`, or `CallControlError` (fixed text: the far
        end's own reason stays in the log)."""
        call = self._calls.get(call_id)
        if call is None:
            raise CallControlError("the call has ended", kind="ended")
        await transfer_checked(call.control, call.info, self.dialplan, target)

    async def shutdown(self) -> None:
        """Cancel every call's task and wait until each has closed its call."""
        self._closed = True
        await self._tasks.aclose()


async def transfer_checked(control: Call, info: CallInfo, guard: DialGuard, target: str) -> None:
    """Check `target` against the tenant's dial plan, then transfer to its canonical form."""
    extra = {"call_id": info.call_id, "tenant_id": info.tenant_id}
    destination = guard.check(info.tenant_id, target)
    try:
        await control.transfer(str(destination))
    except CallControlError as exc:
        log.warning("transfer failed", extra={**extra, "error": str(exc)})
        error = CallControlError("the transfer did not complete", kind=exc.kind)
        error.retryable = exc.retryable
        raise error from None


class PlannedCall(Call):
    """A call's control as the conversation gets it: transfers (the model's tool, a flow's
    step) go through the dial plan; a refused or malformed target is a `CallControlError`."""

    def __init__(self, inner: Call, info: CallInfo, calls: LiveCalls) -> None:
        self._inner = inner
        self._calls = calls
        self.info = info

    @property
    def inner(self) -> Call:
        """The transport's own call control (transfers there skip the dial plan)."""
        return self._inner

    async def hangup(self, reason: str = "normal") -> None:
        await self._inner.hangup(reason)

    async def transfer(self, target: str) -> None:
        try:
            await transfer_checked(self._inner, self.info, self._calls.dialplan, target)
        except (DestinationInvalid, DestinationRefused) as exc:
            extra = {"call_id": self.info.call_id, "tenant_id": self.info.tenant_id}
            log.warning("transfer refused", extra={**extra, "error": str(exc)})
            raise CallControlError(f"transfer refused: {exc}", kind="not_allowed") from None

    async def send_dtmf(self, digits: str) -> None:
        await self._inner.send_dtmf(digits)

    async def next_signal(self) -> CallSignal:
        return await self._inner.next_signal()
