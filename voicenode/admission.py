"""Admission control: how many calls a node takes at once, and refusing new ones while draining.

A node over capacity refuses a new call (SIP 503, HTTP 503) with a Retry-After instead of
degrading the calls it has: at `node.max_calls`, or (`node.slo_v2v_ms`) while its engines'
load projects one more call's voice-to-voice p95 over the SLO (`pipeline.load`). `Admission`
is the counter behind that decision; the node's `CallHost` and every transport's signalling
use one shared instance.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from control_api.calls import LiveCalls
from control_api.host import Dialer
from control_api.quotas import Quotas
from control_api.refusals import Draining, EngineSaturated, OverCapacity
from pipeline.engines import Engines
from pipeline.load import LoadEstimator

__all__ = ["Admission", "OverCapacity"]

log = logging.getLogger(__name__)


class Admission:
    """Counts admitted calls against `max_calls`; after `start_drain()` admits none.

    `admit(call_id)` and `release(call_id)` pair up (release is idempotent per id);
    `wait_idle()` returns once no admitted call is left (the drain waits on it).
    """

    def __init__(
        self,
        max_calls: int,
        *,
        retry_after_full_s: int = 5,
        retry_after_draining_s: int = 30,
    ) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, got {max_calls}")
        self.max_calls = max_calls
        self.retry_after_full_s = retry_after_full_s
        self.retry_after_draining_s = retry_after_draining_s
        self._calls: set[str] = set()
        self._draining = False
        self._drain_hooks: list[Callable[[], None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        return len(self._calls)

    @property
    def draining(self) -> bool:
        return self._draining

    def admit(self, call_id: str, load: LoadEstimator | None = None) -> None:
        """Take the call or raise `OverCapacity` (`EngineSaturated` when `load` is saturated);
        a taken call must later be `release`d."""
        if self._draining:
            raise Draining("draining", self.retry_after_draining_s)
        if len(self._calls) >= self.max_calls:
            raise OverCapacity("max_calls", self.retry_after_full_s)
        if load is not None and load.saturated:
            log.debug(
                "engines saturated: a new call is refused",
                extra={
                    "active_calls": self.active,
                    "projected_v2v_ms": round(load.projected_v2v_ms()),
                    "slo_v2v_ms": load.slo_ms,
                },
            )
            raise EngineSaturated("engines_saturated", self.retry_after_full_s)
        if call_id in self._calls:
            raise ValueError(f"call {call_id} is already admitted")
        self._calls.add(call_id)
        self._idle.clear()

    def release(self, call_id: str) -> None:
        self._calls.discard(call_id)
        if not self._calls:
            self._idle.set()

    def start_drain(self) -> None:
        if not self._draining:
            self._draining = True
            log.info("draining: new calls are refused", extra={"active_calls": self.active})
            for hook in self._drain_hooks:
                hook()

    def on_drain(self, hook: Callable[[], None]) -> None:
        """Call `hook` when the drain starts (now, if it has)."""
        self._drain_hooks.append(hook)
        if self._draining:
            hook()

    async def wait_idle(self) -> None:
        """Return once no admitted call is left."""
        await self._idle.wait()


class AdmittingHost:
    """The admission half of a `CallHost`, delegated to `self.admission`."""

    admission: Admission
    quotas: Quotas
    engines: Engines | None = None
    """The node's engines once loaded; their estimator (if measured) gates admission."""

    @functools.cached_property
    def calls(self) -> LiveCalls:
        return LiveCalls(self)  # type: ignore[arg-type]  # the subclass completes CallHost

    @functools.cached_property
    def dialers(self) -> dict[str, Dialer]:
        """Outbound call paths by name ("sip", "asterisk"); listeners register theirs."""
        return {}

    @property
    def draining(self) -> bool:
        return self.admission.draining

    @property
    def load(self) -> LoadEstimator | None:
        """The engines' load estimator, if the engines are loaded and measured."""
        return None if self.engines is None else self.engines.estimator

    @property
    def saturated(self) -> bool:
        """One more call would push the projected voice-to-voice p95 over `node.slo_v2v_ms`
        (`/readyz` answers 503 meanwhile)."""
        return self.load is not None and self.load.saturated

    def admit(self, call_id: str) -> None:
        self.admission.admit(call_id, self.load)

    def on_drain(self, hook: Callable[[], None]) -> None:
        self.admission.on_drain(hook)

    def release(self, call_id: str) -> None:
        self.admission.release(call_id)
        self.quotas.release(call_id)

    async def admit_for(self, tenant_id: str, call_id: str) -> None:
        """Admit the call and take its tenant's quota slot, or hold neither: `OverCapacity`
        (node full, draining, loading, engines saturated) or `QuotaExceeded` (the tenant's
        limits)."""
        self.admit(call_id)
        try:
            await self.quotas.take(tenant_id, call_id)
        except BaseException:
            self.release(call_id)
            raise

    def active_calls(self) -> int:
        return self.admission.active

    def start_drain(self) -> None:
        self.admission.start_drain()

    async def wait_idle(self) -> None:
        await self.admission.wait_idle()
