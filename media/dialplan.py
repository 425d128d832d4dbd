"""A tenant's dial plan: which destinations its outbound calls and transfers may reach, and
how many outbound calls it may start per minute (sans-IO, the clock injected).

The operator sets it in `[dialplan]` (node-wide) and `[dialplan.tenants.<id>]` (per tenant);
tenants cannot change it. `DialGuard` is what the node holds: `check(tenant, text)` parses
the target (`core.destination`) and applies the tenant's plan, `take_call(tenant)` counts
an outbound call against the tenant's rate. Refusals are `DestinationInvalid` (malformed:
400), `DestinationRefused` (not in the plan: 403) and `RateLimited` (429 + Retry-After); their
messages never repeat the target.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import msgspec

from config.schema import DialPlanSettings
from core.destination import Destination, Extension, Number, SipUri, parse
from core.errors import Refused

__all__ = [
    "DestinationInvalid",
    "DestinationRefused",
    "DialGuard",
    "DialPlan",
    "RateLimited",
    "plan_for",
]

WINDOW_S: Final = 60.0


class DestinationInvalid(Refused, ValueError):
    """The target is not a destination at all (`core.destination.parse` refused it)."""


class DestinationRefused(Refused):
    """The target is well-formed but the tenant's dial plan does not allow it."""


class RateLimited(Refused):
    """The tenant started `calls_per_minute` outbound calls in the last minute."""

    retryable = True

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"outbound calls per minute reached; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class DialPlan(msgspec.Struct, frozen=True, kw_only=True):
    """One tenant's effective plan (node defaults with its overrides applied)."""

    allowed_prefixes: tuple[str, ...] = ()
    refused_prefixes: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    calls_per_minute: int = 0

    def check(self, destination: Destination) -> None:
        """`DestinationRefused` unless the plan allows `destination`."""
        match destination:
            case Number(e164=number):
                self._check_number(number)
            case SipUri(host=host, user=user):
                if not self._domain_allowed(host):
                    raise DestinationRefused("the dial plan does not allow this SIP domain")
                if user.startswith("+") or any(user.startswith(p) for p in self.refused_prefixes):
                    self._check_number(user)
            case Extension(name=name):
                if name not in self.extensions:
                    raise DestinationRefused("the dial plan does not list this extension")

    def _check_number(self, number: str) -> None:
        if any(number.startswith(prefix) for prefix in self.refused_prefixes):
            raise DestinationRefused("the dial plan refuses this number's prefix")
        if not any(number.startswith(prefix) for prefix in self.allowed_prefixes):
            raise DestinationRefused("the dial plan does not allow this number's prefix")

    def _domain_allowed(self, host: str) -> bool:
        host = host.lower()
        for domain in self.allowed_domains:
            domain = domain.lower().strip("[]")
            if domain.startswith("*."):
                if host.endswith(domain[1:]) and host != domain[2:]:
                    return True
            elif host == domain:
                return True
        return False


def plan_for(settings: DialPlanSettings, tenant_id: str) -> DialPlan:
    """The tenant's plan: `[dialplan]` with `[dialplan.tenants.<tenant_id>]` over it."""
    plan = DialPlan(
        allowed_prefixes=settings.allowed_prefixes,
        refused_prefixes=settings.refused_prefixes,
        allowed_domains=settings.allowed_domains,
        extensions=settings.extensions,
        calls_per_minute=settings.calls_per_minute,
    )
    override = settings.tenants.get(tenant_id)
    if override is None:
        return plan
    changes = {
        name: value
        for name in override.__struct_fields__
        if (value := getattr(override, name)) is not None
    }
    return msgspec.structs.replace(plan, **changes)


class DialGuard:
    """The node's dial plans and each tenant's recent outbound call starts."""

    def __init__(
        self,
        settings: DialPlanSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or DialPlanSettings()
        self._clock = clock
        self._starts: dict[str, deque[float]] = {}

    def plan(self, tenant_id: str) -> DialPlan:
        return plan_for(self.settings, tenant_id)

    def check(self, tenant_id: str, target: str) -> Destination:
        """The destination `target` names, if the tenant's plan allows it."""
        try:
            destination = parse(target)
        except ValueError as exc:
            raise DestinationInvalid(str(exc)) from None
        self.plan(tenant_id).check(destination)
        return destination

    def take_call(self, tenant_id: str) -> None:
        """Count one outbound call start, or raise `RateLimited` (nothing counted then)."""
        limit = self.plan(tenant_id).calls_per_minute
        now = self._clock()
        starts = self._starts.setdefault(tenant_id, deque())
        while starts and starts[0] <= now - WINDOW_S:
            starts.popleft()
        if len(starts) >= limit:
            oldest = starts[-limit] if limit else now
            raise RateLimited(max(1, math.ceil(oldest + WINDOW_S - now)))
        starts.append(now)
