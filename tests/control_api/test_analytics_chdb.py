"""The node's ClickHouse SQL on today's ClickHouse (chdb, 26.9 in-process), through the node's
own client: every migration's DDL (and version 2 over an interrupted run), the sink's inserts
(a retried batch counted once with FINAL, a refused row split out), the summary query (the
same answer as the SQL store, as on 18.16) and retention's partition listing and drop.

What chdb cannot show: the HTTP interface itself (no server; `ChdbTransport` reads the node's
requests in its place) and external tables (made a temporary table per query)."""

from __future__ import annotations

import datetime

from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics import summary as summary_module
from control_api.analytics.chsink import ClickHouseSink
from control_api.analytics.clickhouse import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TURN_STAGES,
    ClickHouse,
    migrate,
)
from control_api.analytics.events import TranscriptFinalEvent, encode_event
from control_api.analytics.retention import drop_expired
from control_api.analytics.tables import OutboxRow
from control_api.store import Store
from tests.control_api.chdb_clickhouse import ChdbTransport, chdb_ch, chdb_transport, version
from tests.control_api.test_analytics_retention import MONTHS, NOW, _fill
from tests.control_api.test_analytics_summary import DAY, _calls, msgspec_dict
from tests.support.analytics import T0, FakeCalls, WallClock, settings, store, wait_for

__all__ = ["chdb_ch", "chdb_transport", "store"]


async def count(ch: ClickHouse, table: str, final: bool = True) -> int:
    rows = await ch.select(f"SELECT count() AS n FROM voicenode.{table}{' FINAL' if final else ''}")
    return int(rows[0]["n"])


async def test_it_is_a_current_clickhouse(chdb_transport: ChdbTransport) -> None:
    assert int(version(chdb_transport).split(".")[0]) >= 24


async def test_every_migration_runs_and_a_second_run_is_a_no_op(chdb_ch: ClickHouse) -> None:
    assert await migrate(chdb_ch) == list(range(1, SCHEMA_VERSION + 1))
    assert await migrate(chdb_ch) == []
    columns = await chdb_ch.select(
        "SELECT name, type FROM system.columns WHERE database = 'voicenode' AND table = 'turns'"
    )
    types = {row["name"]: row["type"] for row in columns}
    assert all(types[f"{stage}_ms"] == "Nullable(Float64)" for stage in TURN_STAGES)
    engines = await chdb_ch.select(
        "SELECT name, engine FROM system.tables WHERE database = 'voicenode' ORDER BY name"
    )
    assert [(r["name"], r["engine"]) for r in engines] == [
        ("calls", "ReplacingMergeTree"),
        ("schema_versions", "MergeTree"),
        ("turns", "ReplacingMergeTree"),
    ]


async def test_version_2_over_an_interrupted_run(chdb_ch: ClickHouse) -> None:
    db = chdb_ch.database
    await chdb_ch.execute(f"CREATE DATABASE {db}")
    await chdb_ch.execute(
        f"CREATE TABLE {db}.schema_versions (version UInt32, applied_at DateTime)"
        " ENGINE = MergeTree ORDER BY version"
    )
    for version_ in (1, 2):  # version 2's ALTER ran, its version was not recorded
        for statement in MIGRATIONS[version_](db):
            await chdb_ch.execute(statement)
    await chdb_ch.insert("schema_versions", [{"version": 1, "applied_at": "2026-11-01 00:00:00"}])
    assert await migrate(chdb_ch) == list(range(2, SCHEMA_VERSION + 1))


async def test_the_sink_and_the_summary(chdb_ch: ClickHouse, store: Store) -> None:
    calls, wall = FakeCalls(), WallClock()
    async with open_analytics(settings(), store, calls, wall=wall) as analytics:
        _calls(calls, wall)

        async def written() -> bool:
            return analytics.recorder.written == 6 * 5

        await wait_for(written, what="every event written")
    async with store.session() as session:
        rows = list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())
    sink = ClickHouseSink(chdb_ch, store)
    assert await sink.send_batch(rows) == []
    assert await sink.send_batch(rows) == []  # a retry after a lost acknowledgement
    assert await count(chdb_ch, "calls", final=False) == 12
    assert await count(chdb_ch, "calls") == 6 and await count(chdb_ch, "turns") == 12
    lo, hi = T0 - DAY, T0 + 3 * DAY
    for group_by in ("day", "agent", "disposition", "transport"):
        ch = await summary_module.from_clickhouse(chdb_ch, "acme", lo, hi, group_by)
        sql = await summary_module.from_store(store, "acme", lo, hi, group_by)
        assert ch, group_by
        assert [msgspec_dict(g, barge=False) for g in ch] == [
            msgspec_dict(g, barge=False) for g in sql
        ], group_by


async def test_a_refused_row_is_split_out_and_the_rest_lands(
    chdb_ch: ClickHouse, store: Store
) -> None:
    events = [
        TranscriptFinalEvent(
            id=f"x:{seq}", call_id="x", tenant_id="demo", seq=seq,
            at="2026-12-01T10:00:00.000Z", role="user", text=f"line {seq}", turn=turn,
        )
        for seq, turn in ((0, 1), (1, -1), (2, 3))  # turn -1: not a UInt32
    ]  # fmt: skip
    rows = [
        OutboxRow(id=e.seq + 1, event_id=e.id, call_id=e.call_id, tenant_id=e.tenant_id,
                  node="n", seq=e.seq, type="transcript.final",
                  payload=encode_event(e).decode(), created_at=T0)
        for e in events
    ]  # fmt: skip
    sink = ClickHouseSink(chdb_ch, store)
    (refusal,) = await sink.send_batch(rows)
    assert refusal.row.event_id == "x:1" and "column turn" in refusal.reason
    texts = await chdb_ch.select("SELECT text FROM voicenode.turns FINAL ORDER BY seq")
    assert [r["text"] for r in texts] == ["line 0", "line 2"]


async def _months(ch: ClickHouse, tenant: str) -> list[int]:
    rows = await ch.select(
        "SELECT DISTINCT toYYYYMM(started_at) AS m FROM voicenode.calls"
        " WHERE tenant_id = (SELECT t FROM p) ORDER BY m",
        {"t": tenant},
        "t String",
    )
    return [int(row["m"]) for row in rows]


async def test_retention_drops_whole_month_partitions(chdb_ch: ClickHouse) -> None:
    await migrate(chdb_ch)
    for tenant in ("acme", "demo"):
        await _fill(chdb_ch, tenant)
    dropped = await drop_expired(chdb_ch, {"acme": 60}, NOW)
    assert sorted((p.table, p.tenant_id, p.month) for p in dropped) == [
        (table, "acme", month) for table in ("calls", "turns") for month in (202607, 202608, 202609)
    ]
    assert await _months(chdb_ch, "acme") == [202610, 202611, 202612]
    assert await _months(chdb_ch, "demo") == list(MONTHS)
    assert await drop_expired(chdb_ch, {"acme": 60}, NOW) == []
    later = NOW + datetime.timedelta(days=31)
    assert {p.month for p in await drop_expired(chdb_ch, {"acme": 60}, later)} == {202610}
