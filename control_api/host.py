"""The seam between the HTTP/WebRTC layer and the node that runs conversations.

The control API admits a call, hands its transport and call control to `run_call`, and
forwards the events it reports. `voicenode.node` implements the real host; tests use a fake.
"""

from __future__ import annotations

from typing import Protocol

from media.call import Call, CallInfo
from media.transport import Transport
from pipeline.events import EventCallback


class OverCapacity(Exception):
    """A new call was refused: the node is full or draining. Retry after `retry_after_s`."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(f"call refused: {reason}; retry after {retry_after_s} s")
        self.reason = reason
        self.retry_after_s = retry_after_s


class CallHost(Protocol):
    """What the control API needs from the node."""

    @property
    def ready(self) -> bool:
        """True once the engines' models are loaded."""
        ...

    @property
    def draining(self) -> bool: ...

    def has_agent(self, tenant_id: str, agent: str) -> bool: ...

    def admit(self, call_id: str) -> None:
        """Take a new call or raise `OverCapacity` (draining, max calls); pairs with `release`."""
        ...

    def release(self, call_id: str) -> None: ...

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        """Run the conversation; return when it ends (the caller then hangs up and closes)."""
        ...

    def active_calls(self) -> int: ...

    def start_drain(self) -> None: ...

    async def wait_idle(self) -> None:
        """Return once no admitted call is left (the drain waits on it)."""
        ...
