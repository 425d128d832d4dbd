"""Outbox retention: delivered events past `analytics.outbox_retention_hours` are deleted, on an
injected clock; undelivered ones (a sink has not taken them, a dead letter, an open call, no
sink at all) stay whatever their age. The setting is validated."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from config import ConfigError
from config.loader import load_settings
from control_api.analytics import open_analytics
from control_api.analytics.outbox import prune_delivered
from control_api.analytics.retention import OutboxRetention
from control_api.analytics.tables import (
    CallRow,
    DeadLetterRow,
    OutboxRow,
    RelayMarkRow,
    WebhookRow,
)
from control_api.store import Base, Store, open_store
from media.clock import VirtualClock
from tests.control_api.redis_server import RedisServer, redis_server
from tests.support.analytics import (
    NODE,
    FakeCalls,
    call_info,
    closing,
    opening,
    settings,
    store,
    wait_for,
)
from tests.support.pg import PostgresServer, pg_server

__all__ = ["pg_server", "redis_server", "store"]

T0 = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgres"])
async def any_store(request: pytest.FixtureRequest, store: Store) -> AsyncIterator[Store]:
    """The analytics tables on SQLite, or on a fresh PostgreSQL database (a fleet's store)."""
    if request.param == "sqlite":
        yield store
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    pg = open_store(server.create_database())
    try:
        async with pg.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield pg
    finally:
        await pg.close()


def call(call_id: str, tenant: str, *, ended: bool = True) -> CallRow:
    return CallRow(
        id=call_id,
        tenant_id=tenant,
        agent="a",
        node=NODE,
        direction="inbound",
        transport="webrtc",
        started_at=T0,
        ended_at=T0 if ended else None,
    )


def event(row_id: int, call_id: str, seq: int, tenant: str, at: datetime.datetime) -> OutboxRow:
    return OutboxRow(
        id=row_id,
        event_id=f"{call_id}:{seq}",
        call_id=call_id,
        tenant_id=tenant,
        node=NODE,
        seq=seq,
        type="transcript.final",
        payload="{}",
        created_at=at,
    )


def mark(sink: str, call_id: str, seq: int) -> RelayMarkRow:
    return RelayMarkRow(sink=sink, call_id=call_id, delivered_seq=seq, attempts=0)


async def left(store: Store) -> tuple[list[str], list[tuple[str, str]]]:
    """The outbox's event ids and the relay marks (sink, call) that remain."""
    async with store.session() as session:
        events = list(await session.scalars(select(OutboxRow.event_id).order_by(OutboxRow.id)))
        marks = (await session.execute(select(RelayMarkRow.sink, RelayMarkRow.call_id))).all()
    return events, sorted((sink, call_id) for sink, call_id in marks)


async def test_only_delivered_events_past_the_age_are_pruned(any_store: Store) -> None:
    store = any_store
    old, young = T0 - 3 * HOUR, T0 - HOUR // 2
    hook = WebhookRow(
        id="wh1", tenant_id="acme", url="https://x", events=[], secret="s", after_outbox_id=3,
        created_at=T0,
    )  # fmt: skip
    async with store.session() as session:
        session.add_all(
            [call("done", "demo"), call("hooked", "acme"), call("open", "demo", ended=False)]
        )
        session.add_all([
            event(1, "done", 0, "demo", old),  # taken by redis: goes
            event(2, "done", 1, "demo", young),  # taken, but younger than the retention
            event(3, "hooked", 0, "acme", old),  # written before the webhook: redis is enough
            event(4, "hooked", 1, "acme", old),  # the webhook took it: goes
            event(5, "hooked", 2, "acme", old),  # the webhook has not: stays
            event(6, "open", 0, "demo", old),  # its call is still open: stays
            event(7, "dead", 0, "demo", old),  # dead-lettered: stays
            event(8, "late", 0, "demo", old),  # redis has not taken it: stays
        ])  # fmt: skip
        session.add(hook)
        session.add_all([
            mark("redis", "done", 1), mark("redis", "hooked", 2), mark("redis", "open", 0),
            mark("redis", "dead", 0), mark("webhook:wh1", "hooked", 1), mark("redis", "gone", 4),
        ])  # fmt: skip
        session.add(
            DeadLetterRow(
                sink="redis", event_id="dead:0", call_id="dead", tenant_id="demo", seq=0,
                type="transcript.final", attempts=1, error="refused", created_at=T0,
            )
        )  # fmt: skip

    pruned = await prune_delivered(store, NODE, ["redis"], T0 - HOUR, batch=2)
    events, marks = await left(store)
    assert pruned == 3
    assert events == ["done:1", "hooked:2", "open:0", "dead:0", "late:0"]
    # every call with rows left keeps its marks ("gone" had none to begin with: left alone)
    assert ("redis", "done") in marks and ("webhook:wh1", "hooked") in marks

    # a sink the node has now (ClickHouse, say) that has not taken them: nothing more goes
    assert await prune_delivered(store, NODE, ["redis", "clickhouse"], T0 + HOUR) == 0
    # later, everything delivered goes, and the marks of calls with no row left with it
    assert await prune_delivered(store, NODE, ["redis"], T0 + HOUR) == 1
    events, marks = await left(store)
    assert events == ["hooked:2", "open:0", "dead:0", "late:0"]
    assert ("redis", "done") not in marks and ("redis", "hooked") in marks


async def test_without_a_sink_nothing_counts_as_delivered(store: Store) -> None:
    async with store.session() as session:
        session.add(call("c1", "demo"))
        session.add(event(1, "c1", 0, "demo", T0 - 100 * HOUR))
    assert await prune_delivered(store, NODE, [], T0) == 0
    assert (await left(store))[0] == ["c1:0"]


async def test_the_node_prunes_what_redis_took_on_its_clock(
    store: Store, redis_server: RedisServer
) -> None:
    wall = [T0]
    clock = VirtualClock()
    calls = FakeCalls()
    config = settings(redis_url=redis_server.url, outbox_retention_hours=2)
    async with open_analytics(config, store, calls, clock, wall=lambda: wall[0]):
        for call_id in ("c1", "c2"):
            for item in [*opening(), *closing()]:
                calls.emit(call_info(call_id), item)

        async def delivered() -> bool:
            async with store.session() as session:
                marks = (await session.scalars(select(RelayMarkRow.delivered_seq))).all()
                ended = await session.scalar(
                    select(CallRow.id).where(CallRow.id == "c2", CallRow.ended_at.is_not(None))
                )
            return ended is not None and sorted(marks) == [4, 4]

        await wait_for(delivered, what="both calls' events taken by redis")
        assert len((await left(store))[0]) == 10
        wall[0] = T0 + 2 * HOUR + datetime.timedelta(seconds=1)
        await clock.advance(900.0)

        async def pruned() -> bool:
            return (await left(store)) == ([], [])

        await wait_for(pruned, what="the delivered events pruned on the next pass")


async def test_a_failed_pass_is_logged_and_the_next_one_runs(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    passes: asyncio.Queue[int] = asyncio.Queue()
    failures = [RuntimeError("store down")]

    class Observed(OutboxRetention):
        async def pass_once(self) -> int:
            if failures:
                raise failures.pop()
            pruned = await super().pass_once()
            passes.put_nowait(pruned)
            return pruned

    clock = VirtualClock()
    job = Observed(store, NODE, ["redis"], 1, lambda: T0)
    task = asyncio.create_task(job.run(clock, every_s=900.0))
    try:

        async def logged() -> bool:
            return any(r.getMessage() == "outbox retention pass failed" for r in caplog.records)

        await wait_for(logged, what="the failed pass logged")
        await clock.advance(900.0)
        assert await asyncio.wait_for(passes.get(), 30) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("hours", ["-1", "87601", "a day"])
def test_the_setting_is_validated(hours: str) -> None:
    with pytest.raises(ConfigError, match="outbox_retention_hours"):
        load_settings(env={"VOICENODE_ANALYTICS__OUTBOX_RETENTION_HOURS": hours})
    loaded = load_settings(env={"VOICENODE_ANALYTICS__OUTBOX_RETENTION_HOURS": "168"})
    assert loaded.analytics.outbox_retention_hours == 168
    assert load_settings(env={}).analytics.outbox_retention_hours == 0
