"""The ClickHouse sink's erasures on today's ClickHouse (chdb, in-process, through the node's
own client; see `chdb_clickhouse`): `subject.erased` deletes the tenant's rows of the erased
calls by a mutation, `tenant.deleted` drops the tenant's partitions; other calls and tenants
keep theirs, and an event delivered again queues no mutation."""

from __future__ import annotations

from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics.chsink import ClickHouseSink
from control_api.analytics.clickhouse import ClickHouse
from control_api.analytics.tables import OutboxRow
from control_api.store import Store
from tests.control_api.chdb_clickhouse import chdb_ch, chdb_transport
from tests.control_api.test_analytics_clickhouse import run_call
from tests.control_api.test_analytics_clickhouse_erasure import (
    MUTATION_S,
    deleted,
    erased,
    outbox_rows,
)
from tests.support.analytics import FakeCalls, WallClock, settings, store, wait_for

__all__ = ["chdb_ch", "chdb_transport", "store"]


async def held(ch: ClickHouse, table: str) -> dict[tuple[str, str], int]:
    rows = await ch.select(
        f"SELECT tenant_id, call_id, count() AS n FROM voicenode.{table}"
        " GROUP BY tenant_id, call_id"
    )
    return {(r["tenant_id"], r["call_id"]): int(r["n"]) for r in rows}


async def mutations(ch: ClickHouse) -> tuple[int, int]:
    [row] = await ch.select(
        "SELECT count() AS n, countIf(is_done = 0) AS running FROM system.mutations"
        " WHERE database = 'voicenode'"
    )
    return int(row["n"]), int(row["running"])


async def test_erasures_on_a_current_clickhouse(chdb_ch: ClickHouse, store: Store) -> None:
    calls = FakeCalls()
    async with open_analytics(settings(), store, calls, wall=WallClock()) as analytics:
        for call_id, tenant in (("c1", "demo"), ("c2", "demo"), ("c3", "other")):
            await run_call(calls, call_id, tenant=tenant)

        async def written() -> bool:
            return analytics.recorder.written == 3 * 5

        await wait_for(written, what="every event written")
    async with store.session() as session:
        rows = list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())
    sink = ClickHouseSink(chdb_ch, store)
    assert await sink.send_batch(rows) == []
    assert await held(chdb_ch, "calls") == {
        ("demo", "c1"): 1,
        ("demo", "c2"): 1,
        ("other", "c3"): 1,
    }

    erasure = await outbox_rows(store, [erased("demo", ["c1", "c3"])])
    assert await sink.send_batch(erasure) == []
    kept = {("demo", "c2"): 1, ("other", "c3"): 1}

    async def c1_gone() -> bool:
        turns = await held(chdb_ch, "turns")
        return await held(chdb_ch, "calls") == kept and turns == {k: 2 for k in kept}

    await wait_for(c1_gone, timeout_s=MUTATION_S, what="c1's rows deleted")

    async def done() -> bool:
        return (await mutations(chdb_ch))[1] == 0

    await wait_for(done, timeout_s=MUTATION_S, what="the mutations done")
    after = await mutations(chdb_ch)
    assert after[0] == 2
    assert await sink.send_batch(erasure) == []  # delivered again
    assert await mutations(chdb_ch) == after

    deletion = await outbox_rows(store, [deleted("other")])
    assert await sink.send_batch(deletion) == []
    assert await held(chdb_ch, "calls") == {("demo", "c2"): 1}
    assert await held(chdb_ch, "turns") == {("demo", "c2"): 2}
    assert await sink.send_batch(deletion) == []
    assert await mutations(chdb_ch) == after
