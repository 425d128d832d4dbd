"""The relay against a real Redis that goes away mid-call and comes back."""

from __future__ import annotations

from collections import defaultdict

import msgspec
import redis.asyncio as aioredis

from control_api.analytics import open_analytics
from control_api.store import Store
from media.clock import MonotonicClock
from tests.control_api.redis_server import RedisServer, redis_server
from tests.support.analytics import (
    FakeCalls,
    WallClock,
    call_info,
    closing,
    opening,
    settings,
    store,
    wait_for,
)

__all__ = ["redis_server", "store"]

STREAM = "test:events"


async def read_stream(url: str) -> list[dict[str, str]]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return [fields for _id, fields in await client.xrange(STREAM)]
    finally:
        await client.aclose()


async def test_redis_down_mid_call_then_back(store: Store, redis_server: RedisServer) -> None:
    conf = settings(
        redis_url=redis_server.url,
        stream=STREAM,
        redis_backoff_s=0.05,
        redis_backoff_max_s=0.2,
        relay_interval_s=0.05,
    )
    calls = FakeCalls()
    a, b = call_info("call-a"), call_info("call-b", tenant="acme")
    received: list[dict[str, str]] = []
    async with open_analytics(conf, store, calls, MonotonicClock(), wall=WallClock()) as analytics:
        for event in opening():
            calls.emit(a, event)

        async def first_part() -> bool:
            return len(await read_stream(redis_server.url)) == 3

        await wait_for(first_part, what="call A's first events in the stream")
        received += await read_stream(redis_server.url)  # the consumer reads them

        await redis_server.stop()  # Redis keeps nothing: what it had is gone
        for event in opening():
            calls.emit(b, event)
        for event in closing("transferred"):
            calls.emit(a, event)

        async def failing() -> bool:
            return analytics.relay.stream_failing

        await wait_for(failing, what="the relay noticing Redis is down")
        for event in closing():
            calls.emit(b, event)
        await redis_server.start()

        async def rest() -> bool:
            ids = {e["id"] for e in await read_stream(redis_server.url)}
            return {"call-a:5", "call-b:4"} <= ids and not analytics.relay.stream_failing

        await wait_for(rest, what="every event after Redis came back")
        received += await read_stream(redis_server.url)

    seen: set[str] = set()
    per_call: dict[str, list[int]] = defaultdict(list)
    for entry in received:
        if entry["id"] in seen:
            continue  # at least once: the consumer dedupes by id
        seen.add(entry["id"])
        per_call[entry["call_id"]].append(int(entry["seq"]))
        payload = msgspec.json.decode(entry["payload"])
        assert payload["id"] == entry["id"] and payload["type"] == entry["type"]
        assert payload["tenant_id"] == entry["tenant_id"]
    # call A: started, 2 finals, tool, transferred, ended; call B: started, 2 finals, tool, ended
    assert per_call == {"call-a": [0, 1, 2, 3, 4, 5], "call-b": [0, 1, 2, 3, 4]}
    types = {e["id"]: e["type"] for e in received}
    assert types["call-a:4"] == "call.transferred" and types["call-a:5"] == "call.ended"
    assert types["call-b:0"] == "call.started"
    tenants = {e["call_id"]: e["tenant_id"] for e in received}
    assert tenants == {"call-a": "demo", "call-b": "acme"}
