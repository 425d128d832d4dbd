"""`WS /v1/events`: a tenant's live events (call state, partial and final transcripts, tool
calls, turn latency, outcomes) as JSON text messages — see `analytics.feed` for the types.

Authentication, like the REST routes but usable from a browser (which cannot set headers on a
WebSocket):

1. `Authorization: Bearer KEY` on the upgrade request, or
2. `?key=KEY` in the URL (keep such URLs out of logs and history), or
3. neither: the first message within `AUTH_TIMEOUT_S` is `{"type": "auth", "key": "KEY"}`.

`?tenant=NAME` picks the tenant (only the platform admin key may name one). Once
authenticated the server sends `{"type": "ready", "tenant_id": ...}`, then the events. The key
is looked up again every `http.events_recheck_s`: revoked, the socket closes with 4401. Close
codes: 4401 unknown, missing or revoked key, 4403 another tenant, 4429 the tenant already has
`http.events_max_per_tenant` sockets open (or this address sent too many wrong keys lately),
1009 a message over `http.max_ws_message_bytes` (the server's limit), 1011 the key could not be
checked again, 1013 the client fell too far behind (events were dropped; reconnect and read the
history for what was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, Protocol

import msgspec
from litestar import Router, WebSocket, websocket
from litestar.di import NamedDependency, Provide
from litestar.exceptions import PermissionDeniedException, WebSocketDisconnect
from litestar.params import FromQuery

from config.schema import HttpSettings
from control_api.analytics import Analytics
from control_api.analytics.feed import Subscription
from control_api.auth import Principal, bearer_token
from media.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S: Final = 5.0
CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_TOO_MANY: Final = 4429
CLOSE_RECHECK_FAILED: Final = 1011
CLOSE_TOO_SLOW: Final = 1013

PrincipalFor = Callable[[str], Awaitable[Principal | None] | Principal | None]
"""Turns a key into a principal (None: unknown key); sync or async."""


class AuthLimits(Protocol):
    """Failed-auth limits per source address (`KeyRing` has them)."""

    def retry_after(self, source: str) -> int | None: ...

    def failed(self, source: str) -> None: ...


class EventSockets:
    """The open event sockets and their limits: per-tenant count, key re-check interval (on
    `clock`), failed-auth limits."""

    def __init__(
        self,
        *,
        clock: Clock,
        recheck_s: float,
        max_per_tenant: int,
        limits: AuthLimits | None = None,
    ) -> None:
        self.clock = clock
        self.recheck_s = recheck_s
        self.max_per_tenant = max_per_tenant
        self.limits = limits
        self._open: dict[str, int] = {}

    @classmethod
    def from_settings(cls, http: HttpSettings) -> EventSockets:
        return cls(
            clock=MonotonicClock(),
            recheck_s=http.events_recheck_s,
            max_per_tenant=http.events_max_per_tenant,
        )

    def open_for(self, tenant_id: str) -> int:
        return self._open.get(tenant_id, 0)

    @contextlib.contextmanager
    def slot(self, tenant_id: str) -> Iterator[bool]:
        """Holds one of the tenant's sockets; yields False (and holds nothing) when full."""
        if self.open_for(tenant_id) >= self.max_per_tenant:
            yield False
            return
        self._open[tenant_id] = self.open_for(tenant_id) + 1
        try:
            yield True
        finally:
            left = self._open[tenant_id] - 1
            if left:
                self._open[tenant_id] = left
            else:
                del self._open[tenant_id]


AnalyticsDep = NamedDependency[Analytics]
PrincipalForDep = NamedDependency[PrincipalFor]
SocketsDep = NamedDependency[EventSockets]


class _AuthMessage(msgspec.Struct, frozen=True):
    type: str
    key: str


async def _first_message_key(socket: WebSocket[Any, Any, Any]) -> str | None:
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            raw = await socket.receive_data("text")
    except (TimeoutError, WebSocketDisconnect):
        return None
    try:
        message = msgspec.json.decode(raw, type=_AuthMessage)
    except msgspec.DecodeError:
        return None
    return message.key if message.type == "auth" else None


async def _principal(principal_for: PrincipalFor, key: str) -> Principal | None:
    found = principal_for(key)
    if inspect.isawaitable(found):
        found = await found
    return found


async def _pump(socket: WebSocket[Any, Any, Any], sub: Subscription) -> None:
    while True:
        await socket.send_text(await sub.queue.get())


async def _until_client_leaves(socket: WebSocket[Any, Any, Any]) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data("text")  # clients have nothing more to say; ignored


async def _until_revoked(
    principal_for: PrincipalFor, token: str, principal: Principal, sockets: EventSockets
) -> int:
    """Looks the key up every `recheck_s`; returns the close code once it no longer yields
    `principal` (revoked: 4401) or cannot be looked up (1011)."""
    clock = sockets.clock
    while True:
        await clock.sleep_until(clock.now() + sockets.recheck_s)
        try:
            now = await _principal(principal_for, token)
        except Exception as exc:  # the store failed: fail closed, the client reconnects
            log.warning("events socket: key re-check failed", extra={"error": type(exc).__name__})
            return CLOSE_RECHECK_FAILED
        if now != principal:
            return CLOSE_UNAUTHORIZED


async def _authenticate(
    socket: WebSocket[Any, Any, Any],
    principal_for: PrincipalFor,
    sockets: EventSockets,
    token: str | None,
) -> tuple[str, Principal] | None:
    """The key and its principal, or None after closing the socket (unknown key, rate limit)."""
    client = socket.client
    source = client.host if client is not None else "unknown"
    limits = sockets.limits
    if limits is not None and limits.retry_after(source) is not None:
        await socket.close(CLOSE_TOO_MANY, "too many failed authentications; retry later")
        return None
    if token is None:
        token = await _first_message_key(socket)
    principal = await _principal(principal_for, token) if token else None
    if token is None or principal is None:
        if token is not None and limits is not None:
            limits.failed(source)
        await socket.close(CLOSE_UNAUTHORIZED, "unknown or missing key")
        return None
    return token, principal


@websocket("/events")
async def events_socket(
    socket: WebSocket[Any, Any, Any],
    analytics: AnalyticsDep,
    principal_for: PrincipalForDep,
    sockets: SocketsDep,
    key: FromQuery[str | None] = None,
    tenant: FromQuery[str | None] = None,
) -> None:
    """Stream the tenant's live events until the client leaves or its key is revoked."""
    await socket.accept()
    token = bearer_token(socket.headers.get("authorization")) or key
    found = await _authenticate(socket, principal_for, sockets, token)
    if found is None:
        return
    token, principal = found
    try:
        tenant_id = principal.tenant_for(tenant)
    except PermissionDeniedException:
        await socket.close(CLOSE_FORBIDDEN, "this key cannot act for another tenant")
        return
    extra = {"tenant_id": tenant_id}
    with sockets.slot(tenant_id) as admitted:
        if not admitted:
            log.warning("events socket refused: tenant at its socket limit", extra=extra)
            await socket.close(CLOSE_TOO_MANY, "too many event sockets for this tenant")
            return
        revoked = functools.partial(_until_revoked, principal_for, token, principal, sockets)
        await _stream(socket, analytics, tenant_id, revoked)


async def _stream(
    socket: WebSocket[Any, Any, Any],
    analytics: Analytics,
    tenant_id: str,
    revoked: Callable[[], Awaitable[int]],
) -> None:
    extra = {"tenant_id": tenant_id}
    with analytics.feed.subscribe(tenant_id) as sub:
        await socket.send_text(
            msgspec.json.encode({"type": "ready", "tenant_id": tenant_id}).decode()
        )
        log.info("events socket opened", extra=extra)
        tasks = [
            asyncio.ensure_future(_pump(socket, sub)),
            asyncio.ensure_future(_until_client_leaves(socket)),
            asyncio.ensure_future(sub.overflowed.wait()),
            asyncio.ensure_future(revoked()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results[:2]:
            if isinstance(result, Exception) and not isinstance(result, WebSocketDisconnect):
                log.warning("events socket failed", extra={**extra, "error": type(result).__name__})
        close: tuple[int, str] | None = None
        if sub.overflowed.is_set():
            log.warning("events socket too slow; closed", extra=extra)
            close = (CLOSE_TOO_SLOW, "too slow: events were dropped")
        elif isinstance(results[3], int):
            log.info("events socket: key no longer valid; closed", extra=extra)
            close = (results[3], "key revoked" if results[3] == CLOSE_UNAUTHORIZED else "")
        if close is not None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await socket.close(*close)
        log.info("events socket closed", extra=extra)


def events_router(
    analytics: Analytics, *, principal_for: PrincipalFor, sockets: EventSockets | None = None
) -> Router:
    """`WS /v1/events`; `sockets` (limits and clock) default to the settings' `[http]`."""
    socket_limits = sockets or EventSockets.from_settings(analytics.settings.http)

    def provide_analytics() -> Analytics:
        return analytics

    def provide_principal_for() -> PrincipalFor:
        return principal_for

    def provide_sockets() -> EventSockets:
        return socket_limits

    return Router(
        path="/v1",
        route_handlers=[events_socket],
        dependencies={
            "analytics": Provide(provide_analytics, use_cache=True, sync_to_thread=False),
            "principal_for": Provide(provide_principal_for, use_cache=True, sync_to_thread=False),
            "sockets": Provide(provide_sockets, use_cache=True, sync_to_thread=False),
        },
        tags=["events"],
    )
