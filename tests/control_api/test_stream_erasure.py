"""Erasure events delete what the node's Redis Stream holds of the erased calls or tenant
(a real redis-server; `control_api/analytics/stream_erasure.py`)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from control_api.analytics import stream_erasure
from control_api.analytics.events import (
    AnalyticsEvent,
    SubjectErasedEvent,
    TenantDeletedEvent,
    TranscriptFinalEvent,
)
from control_api.analytics.outbox import outbox_columns
from control_api.analytics.sinks import DeliveryError, RedisStreamSink
from control_api.analytics.tables import OutboxRow
from tests.control_api.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]

STREAM = "test:events"
AT = "2026-12-07T10:00:00Z"


def line(call_id: str, tenant: str, seq: int) -> AnalyticsEvent:
    return TranscriptFinalEvent(
        id=f"{call_id}:{seq}", call_id=call_id, tenant_id=tenant, seq=seq, at=AT,
        role="user", text=f"line {seq} of {call_id}", turn=seq,
    )  # fmt: skip


def row(event: AnalyticsEvent) -> OutboxRow:
    return OutboxRow(**outbox_columns(event, "node-a"))


def subject_erased(tenant: str, call_ids: list[str]) -> AnalyticsEvent:
    return SubjectErasedEvent(
        id="era_1:0", call_id="era_1", tenant_id=tenant, seq=0, at=AT,
        subject="hmac-sha256:ab", call_ids=call_ids, erased={"calls": len(call_ids)},
    )  # fmt: skip


async def stream_calls(url: str) -> list[tuple[str, str]]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return [(f["tenant_id"], f["call_id"]) for _id, f in await client.xrange(STREAM)]
    finally:
        await client.aclose()


async def test_a_subject_erasure_deletes_only_its_calls_entries(
    redis_server: RedisServer,
) -> None:
    sink = RedisStreamSink(redis_server.url, STREAM)
    try:
        # call-a is the subject's; call-b is another caller's; call-a of tenant "other" is a
        # different call that happens to share the id (ids are unique per tenant only).
        before = [line("call-a", "acme", 1), line("call-b", "acme", 1), line("call-a", "other", 1)]
        await sink.send_batch([row(e) for e in before])
        # the erasure comes in a later batch, after one more line of call-a in the same batch
        await sink.send_batch(
            [row(line("call-a", "acme", 2)), row(subject_erased("acme", ["call-a"]))]
        )
        assert await stream_calls(redis_server.url) == [
            ("acme", "call-b"),
            ("other", "call-a"),
            ("acme", "era_1"),
        ]
        # delivered again (the relay retries at least once): nothing more goes, nothing breaks
        await sink.send_batch([row(subject_erased("acme", ["call-a"]))])
        assert await stream_calls(redis_server.url) == [
            ("acme", "call-b"),
            ("other", "call-a"),
            ("acme", "era_1"),
            ("acme", "era_1"),
        ]
    finally:
        await sink.aclose()


async def test_a_failed_deletion_fails_the_batch_and_its_retry_adds_nothing_twice(
    redis_server: RedisServer,
) -> None:
    # The sink's user may add but not delete (a real server's ACL), so the erasure's XDEL fails
    # after the batch's XADDs were taken; the relay retries the batch once XDEL is allowed.
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.execute_command("ACL", "SETUSER", "sink", "on", ">pw", "~*", "+@all", "-xdel")
    host = redis_server.url.split("//", 1)[1]
    sink = RedisStreamSink(f"redis://sink:pw@{host}", STREAM)
    try:
        await sink.send_batch([row(line("call-a", "acme", 1)), row(line("call-b", "acme", 1))])
        batch = [row(line("call-a", "acme", 2)), row(subject_erased("acme", ["call-a"]))]
        with pytest.raises(DeliveryError):
            await sink.send_batch(batch)
        assert len(await stream_calls(redis_server.url)) == 4  # added, nothing deleted
        await admin.execute_command("ACL", "SETUSER", "sink", "+xdel")
        await sink.send_batch(batch)
        assert await stream_calls(redis_server.url) == [("acme", "call-b"), ("acme", "era_1")]
        # the next batch is added in full again
        await sink.send_batch([row(line("call-c", "acme", 1))])
        assert (await stream_calls(redis_server.url))[-1] == ("acme", "call-c")
    finally:
        await sink.aclose()
        await admin.aclose()


async def test_a_tenant_deletion_deletes_every_entry_of_the_tenant_over_many_pages(
    redis_server: RedisServer,
) -> None:
    sink = RedisStreamSink(redis_server.url, STREAM)
    try:
        count = stream_erasure.PAGE * 2 + 7  # more than two pages of XRANGE
        events = [line(f"call-{i}", "acme" if i % 3 else "other", 1) for i in range(count)]
        await sink.send_batch([row(e) for e in events])
        deleted = TenantDeletedEvent(
            id="del_1:0", call_id="del_1", tenant_id="acme", seq=0, at=AT, deleted={"calls": 1}
        )
        await sink.send_batch([row(deleted)])
        left = await stream_calls(redis_server.url)
        assert left[-1] == ("acme", "del_1")
        others = [c for t, c in left[:-1] if t == "other"]
        assert [t for t, _c in left[:-1]] == ["other"] * len(others)
        assert others == [f"call-{i}" for i in range(count) if i % 3 == 0]
    finally:
        await sink.aclose()


def test_rows_that_are_not_erasures_or_do_not_decode_erase_nothing() -> None:
    bad = row(subject_erased("acme", ["call-a"]))
    bad.payload = "{not json"
    plain = row(line("call-a", "acme", 1))
    assert stream_erasure.erasures([bad, plain]) == []
