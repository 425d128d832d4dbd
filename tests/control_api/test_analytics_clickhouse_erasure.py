"""The ClickHouse sink follows erasures on a real clickhouse-server (Debian's 18.16): through the
relay, `subject.erased` deletes the tenant's rows of the erased calls from `calls` and `turns`
(a mutation, waited on) and `tenant.deleted` every row of the tenant; other calls and tenants
keep theirs, and an event delivered again changes nothing and queues no mutation. In one batch
the rows before an erasure go with it and the rows after it stay. On a cluster's Distributed
tables, which cannot delete, the erasure is dead-lettered and later rows still land."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics.cherasure import MUTATION_CALLS, Erased, erase_calls
from control_api.analytics.chsink import ClickHouseSink
from control_api.analytics.clickhouse import ClickHouse, migrate
from control_api.analytics.events import (
    AnalyticsEvent,
    SubjectErasedEvent,
    TenantDeletedEvent,
    TranscriptFinalEvent,
)
from control_api.analytics.outbox import write_events
from control_api.analytics.tables import DeadLetterRow, OutboxRow, RelayMarkRow
from control_api.store import Store
from tests.control_api.test_analytics_clickhouse import ch_settings, run_call, with_clickhouse
from tests.control_api.test_analytics_cluster import cluster_server, layout
from tests.support.analytics import NODE, FakeCalls, WallClock, store, wait_for
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server

__all__ = ["clickhouse_server", "cluster_server", "store"]

ERASURE = "era_" + "e" * 32
DELETION = "del_" + "d" * 32
MUTATION_S = 60.0
"""The bound on a mutation's background run (milliseconds for these few rows when idle)."""


def erased(tenant: str, call_ids: list[str], erasure_id: str = ERASURE) -> SubjectErasedEvent:
    return SubjectErasedEvent(
        id=f"{erasure_id}:0", call_id=erasure_id, tenant_id=tenant, seq=0,
        at="2026-12-07T12:00:00.000Z", subject="hmac-sha256:" + "ab" * 32,
        call_ids=call_ids, erased={"calls": len(call_ids)},
    )  # fmt: skip


def deleted(tenant: str) -> TenantDeletedEvent:
    return TenantDeletedEvent(
        id=f"{DELETION}:0", call_id=DELETION, tenant_id=tenant, seq=0,
        at="2026-12-07T12:00:00.000Z", deleted={"calls": 1},
    )  # fmt: skip


def turn(call_id: str, seq: int, tenant: str = "demo") -> TranscriptFinalEvent:
    return TranscriptFinalEvent(
        id=f"{call_id}:{seq}", call_id=call_id, tenant_id=tenant, seq=seq,
        at="2026-12-01T10:00:00.000Z", role="user", text=f"line {seq}", turn=seq + 1,
    )  # fmt: skip


async def outbox_rows(store: Store, events: list[AnalyticsEvent]) -> list[OutboxRow]:
    async with store.session() as session:
        await write_events(session, events, NODE)
    async with store.session() as session:
        ids = [e.id for e in events]
        found = await session.scalars(select(OutboxRow).where(OutboxRow.event_id.in_(ids)))
        return sorted(found, key=lambda r: r.id)


async def held(server: ClickHouseServer, table: str) -> dict[tuple[str, str], int]:
    """(tenant, call) -> rows, with FINAL (a batch the relay retried under load counts once)."""
    text = await server.query(
        f"SELECT tenant_id, call_id, count() FROM voicenode.{table} FINAL"
        " GROUP BY tenant_id, call_id ORDER BY tenant_id, call_id"
    )
    rows = (line.split("\t") for line in text.splitlines() if line)
    return {(tenant, call): int(n) for tenant, call, n in rows}


async def mutations(server: ClickHouseServer) -> tuple[int, int]:
    """The database's mutations: (all, not done)."""
    text = await server.query(
        "SELECT count(), countIf(is_done = 0) FROM system.mutations WHERE database = 'voicenode'"
    )
    total, running = text.split()
    return int(total), int(running)


async def delivered(store: Store, call_id: str) -> bool:
    async with store.session() as session:
        return await session.get(RelayMarkRow, ("clickhouse", call_id)) is not None


async def test_the_relay_erases_a_subjects_calls_then_a_tenant_and_again_is_a_no_op(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    calls = FakeCalls()
    conf = with_clickhouse(clickhouse_server)
    async with open_analytics(conf, store, calls, wall=WallClock()) as analytics:
        for call_id, tenant in (("c1", "demo"), ("c2", "demo"), ("c3", "other")):
            await run_call(calls, call_id, tenant=tenant)
        every = {("demo", "c1"): 1, ("demo", "c2"): 1, ("other", "c3"): 1}

        async def landed() -> bool:
            return await held(clickhouse_server, "calls") == every

        await wait_for(landed, timeout_s=20, what="3 calls in ClickHouse")
        assert await held(clickhouse_server, "turns") == {key: 2 for key in every}
        before = await mutations(clickhouse_server)

        # c3 is another tenant's call: the demo erasure does not reach it
        await outbox_rows(store, [erased("demo", ["c1", "c3", "never-landed"])])
        analytics.relay.wake()
        await wait_for(lambda: delivered(store, ERASURE), timeout_s=20, what="erasure accepted")
        kept = {("demo", "c2"): 1, ("other", "c3"): 1}

        async def c1_gone() -> bool:
            return await held(clickhouse_server, "calls") == kept and await held(
                clickhouse_server, "turns"
            ) == {key: 2 for key in kept}

        await wait_for(c1_gone, timeout_s=MUTATION_S, what="c1's rows deleted")
        await wait_for(
            lambda: _no_mutation_running(clickhouse_server), timeout_s=MUTATION_S, what="done"
        )
        after = await mutations(clickhouse_server)
        assert after[0] >= before[0] + 2  # one per table (more if the relay had to retry)

        # delivered again (an acknowledgement lost): nothing left to delete, no mutation
        assert analytics.clickhouse is not None
        sink = ClickHouseSink(analytics.clickhouse, store)
        [row] = await _rows_of(store, ERASURE)
        assert await sink.send_batch([row]) == []
        assert await mutations(clickhouse_server) == after
        assert await held(clickhouse_server, "calls") == kept

        await outbox_rows(store, [deleted("other")])
        analytics.relay.wake()
        await wait_for(lambda: delivered(store, DELETION), timeout_s=20, what="deletion taken")
        # the tenant's partitions are dropped at once: no mutation to wait for
        assert await held(clickhouse_server, "calls") == {("demo", "c2"): 1}
        assert await held(clickhouse_server, "turns") == {("demo", "c2"): 2}
        [row] = await _rows_of(store, DELETION)
        assert await sink.send_batch([row]) == []
        assert await held(clickhouse_server, "calls") == {("demo", "c2"): 1}
        assert await mutations(clickhouse_server) == after
    async with store.session() as session:
        assert not (await session.scalars(select(DeadLetterRow))).all()


async def _rows_of(store: Store, call_id: str) -> list[OutboxRow]:
    async with store.session() as session:
        return list(await session.scalars(select(OutboxRow).where(OutboxRow.call_id == call_id)))


async def _no_mutation_running(server: ClickHouseServer) -> bool:
    return (await mutations(server))[1] == 0


async def test_in_one_batch_the_rows_before_an_erasure_go_and_the_rows_after_it_stay(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    rows = await outbox_rows(
        store,
        [turn("x", 0), turn("y", 0), turn("x", 1), erased("demo", ["x"]), turn("x", 2)],
    )
    async with httpx.AsyncClient(trust_env=False) as http:
        sink = ClickHouseSink(ClickHouse(ch_settings(clickhouse_server), http), store)
        assert await sink.send_batch(rows) == []

        async def applied() -> bool:
            return await held(clickhouse_server, "turns") == {("demo", "x"): 1, ("demo", "y"): 1}

        await wait_for(applied, timeout_s=MUTATION_S, what="x's first two lines deleted")
    text = await clickhouse_server.query("SELECT text FROM voicenode.turns WHERE call_id = 'x'")
    assert text.strip() == "line 2"


async def test_a_long_erasure_goes_in_statements_of_mutation_calls_ids(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    ids = [f"{n:064d}" for n in range(2 * MUTATION_CALLS + 1)]  # the longest call ids
    rows = await outbox_rows(store, [turn(ids[0], 0), turn(ids[-1], 0), turn("kept", 0)])
    async with httpx.AsyncClient(trust_env=False) as http:
        ch = ClickHouse(ch_settings(clickhouse_server), http)
        assert await ClickHouseSink(ch, store).send_batch(rows) == []
        # calls holds none of them: no statement there; turns: three, each under the size limit
        assert await erase_calls(ch, "demo", ids) == Erased(mutations=3)

        async def applied() -> bool:
            return await held(clickhouse_server, "turns") == {("demo", "kept"): 1}

        await wait_for(applied, timeout_s=MUTATION_S, what="the two long-id lines deleted")


async def test_distributed_tables_cannot_delete_so_the_erasure_is_dead_lettered(
    cluster_server: ClickHouseServer, store: Store
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        ch = ClickHouse(ch_settings(cluster_server), http)
        for statement in layout(ch.database):
            await ch.execute(statement)
        await ch.insert("schema_versions", [{"version": 1, "applied_at": "2026-12-01 00:00:00"}])
        await ch.insert("schema_versions", [{"version": 2, "applied_at": "2026-12-01 00:00:00"}])
        assert await migrate(ch) == []
    calls = FakeCalls()
    async with open_analytics(with_clickhouse(cluster_server), store, calls, wall=WallClock()):
        await run_call(calls, "c1")
        await wait_for(lambda: _landed(cluster_server, "c1"), timeout_s=20, what="c1 on the shards")
        await outbox_rows(store, [erased("demo", ["c1"])])
        await run_call(calls, "c2")  # after the erasure: the lane goes on

        async def dead() -> bool:
            async with store.session() as session:
                return bool((await session.scalars(select(DeadLetterRow))).all())

        await wait_for(dead, timeout_s=20, what="the erasure dead-lettered")
        await wait_for(lambda: _landed(cluster_server, "c2"), timeout_s=20, what="c2 on the shards")
    async with store.session() as session:
        [letter] = (await session.scalars(select(DeadLetterRow))).all()
    assert letter.sink == "clickhouse" and letter.event_id == f"{ERASURE}:0"
    assert "code 48" in letter.error and letter.type == "subject.erased"


async def _landed(server: ClickHouseServer, call_id: str) -> bool:
    """`call_id`'s row is on a shard (read through the Distributed table)."""
    text = await server.query(f"SELECT count() FROM voicenode.calls WHERE call_id = '{call_id}'")
    return int(text) > 0
