"""`WS /v1/events`: a tenant's live events (call state, partial and final transcripts, tool
calls, turn latency, outcomes) as JSON text messages — see `analytics.feed` for the types.

Authentication, like the REST routes but usable from a browser (which cannot set headers on a
WebSocket):

1. `Authorization: Bearer KEY` on the upgrade request, or
2. `?key=KEY` in the URL (keep such URLs out of logs and history), or
3. neither: the first message within `AUTH_TIMEOUT_S` is `{"type": "auth", "key": "KEY"}`.

`?tenant=NAME` picks the tenant (only the platform admin key may name one). Once
authenticated the server sends `{"type": "ready", "tenant_id": ...}`, then the events. Close
codes: 4401 unknown or missing key, 4403 another tenant, 1013 the client fell too far behind
(events were dropped; reconnect and read the history for what was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from litestar import Router, WebSocket, websocket
from litestar.di import NamedDependency, Provide
from litestar.exceptions import PermissionDeniedException, WebSocketDisconnect
from litestar.params import FromQuery

from control_api.analytics import Analytics
from control_api.analytics.feed import Subscription
from control_api.auth import Principal, bearer_token

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S: Final = 5.0
CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_TOO_SLOW: Final = 1013

PrincipalFor = Callable[[str], Awaitable[Principal | None] | Principal | None]
"""Turns a key into a principal (None: unknown key); sync or async."""

AnalyticsDep = NamedDependency[Analytics]
PrincipalForDep = NamedDependency[PrincipalFor]


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


@websocket("/events")
async def events_socket(
    socket: WebSocket[Any, Any, Any],
    analytics: AnalyticsDep,
    principal_for: PrincipalForDep,
    key: FromQuery[str | None] = None,
    tenant: FromQuery[str | None] = None,
) -> None:
    """Stream the tenant's live events until the client leaves."""
    token = bearer_token(socket.headers.get("authorization")) or key
    await socket.accept()
    if token is None:
        token = await _first_message_key(socket)
    principal = await _principal(principal_for, token) if token else None
    if principal is None:
        await socket.close(CLOSE_UNAUTHORIZED, "unknown or missing key")
        return
    try:
        tenant_id = principal.tenant_for(tenant)
    except PermissionDeniedException:
        await socket.close(CLOSE_FORBIDDEN, "this key cannot act for another tenant")
        return
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
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, WebSocketDisconnect):
                log.warning("events socket failed", extra={**extra, "error": type(result).__name__})
        if sub.overflowed.is_set():
            log.warning("events socket too slow; closed", extra=extra)
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await socket.close(CLOSE_TOO_SLOW, "too slow: events were dropped")
        log.info("events socket closed", extra=extra)


def events_router(analytics: Analytics, *, principal_for: PrincipalFor) -> Router:
    def provide_analytics() -> Analytics:
        return analytics

    def provide_principal_for() -> PrincipalFor:
        return principal_for

    return Router(
        path="/v1",
        route_handlers=[events_socket],
        dependencies={
            "analytics": Provide(provide_analytics, use_cache=True, sync_to_thread=False),
            "principal_for": Provide(provide_principal_for, use_cache=True, sync_to_thread=False),
        },
        tags=["events"],
    )
