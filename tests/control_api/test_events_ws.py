"""`WS /v1/events`: authenticated by header, `?key=` or a first message; a tenant sees only its
own live events (state, partial and final transcripts, tools, outcomes)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from control_api.analytics import Analytics, open_analytics
from control_api.events_ws import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED
from control_api.store import Store
from tests.support.analytics import (
    ACME,
    ADMIN,
    FakeCalls,
    WallClock,
    call_info,
    closing,
    opening,
    serve_api,
    settings,
    store,
    wait_for,
)

__all__ = ["store"]


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(10):
            await ws.recv()
    assert ws.close_code is not None
    return ws.close_code


async def subscribed(analytics: Analytics, count: int) -> None:
    async def ready() -> bool:
        return len(analytics.feed) == count

    await wait_for(ready, what=f"{count} subscriber(s)")


async def test_a_tenant_streams_its_own_live_events(store: Store) -> None:
    calls = FakeCalls()
    async with (
        open_analytics(settings(), store, calls, wall=WallClock()) as analytics,
        serve_api(analytics) as api,
    ):
        ws_url = str(api.base_url).replace("http://", "ws://") + "/v1/events"
        async with (
            connect(ws_url, additional_headers={"Authorization": f"Bearer {ACME}"}) as header_ws,
            connect(f"{ws_url}?key={ACME}") as query_ws,
            connect(ws_url) as message_ws,
        ):
            await message_ws.send(json.dumps({"type": "auth", "key": ACME}))
            for ws in (header_ws, query_ws, message_ws):
                assert await receive(ws) == {"type": "ready", "tenant_id": "acme"}
            await subscribed(analytics, 3)
            for event in opening():
                calls.emit(call_info("demo-call"), event)  # another tenant's call: not seen
            for event in opening() + closing():
                calls.emit(call_info("acme-call", tenant="acme"), event)
            for ws in (header_ws, query_ws, message_ws):
                got = [await receive(ws) for _ in range(8)]
                assert {m["call_id"] for m in got} == {"acme-call"}
                assert [m["type"] for m in got] == [
                    "call.started",
                    "call.state",
                    "transcript.partial",
                    "transcript.final",
                    "transcript.final",
                    "turn.metrics",
                    "tool.called",
                    "call.ended",
                ]
                ended = next(m for m in got if m["type"] == "call.ended")
                assert ended["outcome"]["disposition"] == "completed"


async def test_bad_keys_and_other_tenants_are_refused(store: Store) -> None:
    async with (
        open_analytics(settings(), store, FakeCalls(), wall=WallClock()) as analytics,
        serve_api(analytics) as api,
    ):
        ws_url = str(api.base_url).replace("http://", "ws://") + "/v1/events"
        async with connect(f"{ws_url}?key=wrong") as ws:
            assert await closed_with(ws) == CLOSE_UNAUTHORIZED
        async with connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "hello"}))
            assert await closed_with(ws) == CLOSE_UNAUTHORIZED
        async with connect(f"{ws_url}?key={ACME}&tenant=demo") as ws:
            assert await closed_with(ws) == CLOSE_FORBIDDEN
        async with connect(f"{ws_url}?key={ADMIN}&tenant=acme") as ws:
            assert await receive(ws) == {"type": "ready", "tenant_id": "acme"}
