"""Per-tenant call quotas: at most `max_concurrent_calls` live calls and `calls_per_minute`
call starts in any 60 s, counted on this node (a fleet-wide limit is this times the nodes a
tenant's calls spread over).

Every call-starting path (WebRTC offer, SIP INVITE, AudioSocket, outbound dial) calls
`await quotas.take(tenant_id, call_id)` after the node admitted the call; `QuotaExceeded`
becomes HTTP 429 or SIP 486/503 with Retry-After. The host's `release(call_id)` gives the slot
back. Starts are counted when taken (a call that then fails to set up still counted).
The limits are read from the tenant (through `lookup`) on every take, so a change applies to
the next call; the clock is injected. `tenant_cap` (the node's `node.tenant_share` of
`node.max_calls`, see `tenant_cap`) bounds every tenant's live calls whatever its own quota
says, so no tenant can take the whole node.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from control_api.refusals import QuotaExceeded as QuotaExceeded

WINDOW_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class TenantQuota:
    """None: no limit."""

    max_concurrent_calls: int | None = None
    calls_per_minute: int | None = None


UNLIMITED: Final = TenantQuota()

QuotaLookup = Callable[[str], Awaitable[TenantQuota]]


async def _unlimited(_: str) -> TenantQuota:
    return UNLIMITED


def tenant_cap(max_calls: int, share: float) -> int:
    """A tenant's most live calls on a node taking `max_calls`: `share` of them, at least 1."""
    return max(1, math.floor(max_calls * share + 1e-9))


class Quotas:
    """Counts each tenant's live calls and recent call starts against its `TenantQuota`,
    and every tenant's live calls against `tenant_cap` (None: no node-wide cap)."""

    def __init__(
        self,
        lookup: QuotaLookup = _unlimited,
        clock: Callable[[], float] = time.monotonic,
        *,
        busy_retry_after_s: int = 5,
        tenant_cap: int | None = None,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self.busy_retry_after_s = busy_retry_after_s
        self.tenant_cap = tenant_cap
        self._live: dict[str, set[str]] = {}
        self._tenant_of: dict[str, str] = {}
        self._starts: dict[str, deque[float]] = {}

    def active(self, tenant_id: str) -> int:
        return len(self._live.get(tenant_id, ()))

    async def take(self, tenant_id: str, call_id: str) -> None:
        """Count the call against its tenant's quota or raise `QuotaExceeded`."""
        self.take_with(tenant_id, call_id, await self._lookup(tenant_id))

    def take_with(self, tenant_id: str, call_id: str, quota: TenantQuota) -> None:
        """`take` with the limits given (the synchronous core)."""
        if call_id in self._tenant_of:
            raise ValueError(f"call {call_id} already holds a quota slot")
        now = self._clock()
        starts = self._starts.setdefault(tenant_id, deque())
        while starts and starts[0] <= now - WINDOW_S:
            starts.popleft()
        live = self._live.setdefault(tenant_id, set())
        concurrent = min(
            (n for n in (quota.max_concurrent_calls, self.tenant_cap) if n is not None),
            default=None,
        )
        try:
            if concurrent is not None and len(live) >= concurrent:
                raise QuotaExceeded("max_concurrent_calls", self.busy_retry_after_s)
            if quota.calls_per_minute is not None and len(starts) >= quota.calls_per_minute:
                # the oldest start counted leaves the window first
                oldest = starts[-quota.calls_per_minute] if quota.calls_per_minute else now
                wait = oldest + WINDOW_S - now
                raise QuotaExceeded("calls_per_minute", max(1, math.ceil(wait)))
        finally:
            self._forget_idle(tenant_id)
        starts.append(now)
        self._starts[tenant_id] = starts
        self._live.setdefault(tenant_id, set()).add(call_id)
        self._tenant_of[call_id] = tenant_id

    def release(self, call_id: str) -> None:
        """Give the call's slot back (idempotent; unknown ids are ignored)."""
        tenant_id = self._tenant_of.pop(call_id, None)
        if tenant_id is None:
            return
        self._live.get(tenant_id, set()).discard(call_id)
        self._forget_idle(tenant_id)

    def _forget_idle(self, tenant_id: str) -> None:
        if not self._live.get(tenant_id, True):
            del self._live[tenant_id]
        if not self._starts.get(tenant_id, True):
            del self._starts[tenant_id]
