"""The Distributed part of docs/operations.md's cluster layout, run on a real 18.16 server: a
cluster `vn` of two shards (both on the one local server, each shard's tables in its own
database through the replica's `default_database`; no ZooKeeper needed), the node's own
migrations as each shard's local tables, Distributed `calls`/`turns` sharded by call under the
names the node writes to, and `insert_distributed_sync = 1` in the node's profile. The node
takes the prepared schema as it is, its rows spread over both shards, a retried batch counts
once with `FINAL` through the Distributed table, and the summary is the SQL store's.

Not run here: `ON CLUSTER` (distributed DDL needs ZooKeeper: "DDL background thread is not
initialized" without it) and `Replicated*` engines (ZooKeeper too); see docs/operations.md.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics import summary as summary_module
from control_api.analytics.chsink import ClickHouseSink
from control_api.analytics.clickhouse import MIGRATIONS, ClickHouse, migrate
from control_api.analytics.retention import drop_expired
from control_api.analytics.tables import OutboxRow
from control_api.store import Store
from tests.control_api.test_analytics_clickhouse import ch_settings, with_clickhouse
from tests.control_api.test_analytics_summary import DAY, _calls, msgspec_dict
from tests.support.analytics import T0, FakeCalls, WallClock, store, wait_for
from tests.support.clickhouse_server import HAVE_CLICKHOUSE, ClickHouseServer

__all__ = ["store"]

SHARDS = ("vn_shard1", "vn_shard2")
_CLUSTER = """<?xml version="1.0"?>
<yandex><remote_servers><vn>
  <shard><replica><host>127.0.0.1</host><port>{port}</port>
    <default_database>vn_shard1</default_database></replica></shard>
  <shard><replica><host>127.0.0.1</host><port>{port}</port>
    <default_database>vn_shard2</default_database></replica></shard>
</vn></remote_servers></yandex>
"""
_SYNC = "<insert_distributed_sync>1</insert_distributed_sync>"


@pytest.fixture
async def cluster_server() -> AsyncIterator[ClickHouseServer]:
    """clickhouse-server with the cluster `vn` and the node's profile inserting synchronously."""
    if not HAVE_CLICKHOUSE:
        pytest.skip("clickhouse-server is not installed (make system-packages)")
    directory = Path(tempfile.mkdtemp(prefix="voicenode-ch-cluster-"))
    server = ClickHouseServer(directory)
    (directory / "config.d").mkdir()
    (directory / "config.d" / "cluster.xml").write_text(_CLUSTER.format(port=server.tcp_port))
    users = directory / "users.xml"
    users.write_text(
        users.read_text().replace("</max_memory_usage>", f"</max_memory_usage>{_SYNC}")
    )
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def layout(db: str) -> list[str]:
    """The cluster layout on one server: each shard's local tables by the node's migrations,
    the Distributed tables and `schema_versions` in `db`."""
    statements = [f"CREATE DATABASE {db}"]
    for shard in SHARDS:
        statements.append(f"CREATE DATABASE {shard}")
        statements += [s for version in sorted(MIGRATIONS) for s in MIGRATIONS[version](shard)]
    statements += [
        f"CREATE TABLE {db}.{table} AS {SHARDS[0]}.{table}"
        f" ENGINE = Distributed(vn, '', {table}, cityHash64(call_id))"
        for table in ("calls", "turns")
    ]
    statements.append(
        f"CREATE TABLE {db}.schema_versions (version UInt32, applied_at DateTime)"
        " ENGINE = MergeTree ORDER BY version"
    )
    return statements


async def per_shard(server: ClickHouseServer, table: str) -> list[int]:
    return [int(await server.query(f"SELECT count() FROM {shard}.{table}")) for shard in SHARDS]


async def test_the_node_writes_and_reads_through_distributed_tables(
    cluster_server: ClickHouseServer, store: Store
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        ch = ClickHouse(ch_settings(cluster_server), http)
        for statement in layout(ch.database):
            await ch.execute(statement)
        applied = [{"version": v, "applied_at": "2026-12-01 00:00:00"} for v in MIGRATIONS]
        await ch.insert("schema_versions", applied)
        assert await migrate(ch) == []  # the prepared schema is taken as it is

        calls, wall = FakeCalls(), WallClock()
        async with open_analytics(with_clickhouse(cluster_server), store, calls, wall=wall):
            _calls(calls, wall)

            async def landed() -> bool:
                return sum(await per_shard(cluster_server, "calls")) == 6

            await wait_for(landed, what="6 calls on the shards")
            await wait_for(
                lambda: _sum_is(cluster_server, "turns", 12), what="12 turns on the shards"
            )
        assert all(n > 0 for n in await per_shard(cluster_server, "calls"))  # fixed call ids
        await _retry_and_summary(ch, store, cluster_server)


async def _sum_is(server: ClickHouseServer, table: str, n: int) -> bool:
    return sum(await per_shard(server, table)) == n


async def _retry_and_summary(ch: ClickHouse, store: Store, server: ClickHouseServer) -> None:
    async with store.session() as session:
        rows = list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())
    assert await ClickHouseSink(ch, store).send_batch(rows) == []  # a retried batch
    assert sum(await per_shard(server, "calls")) == 12
    assert int(await server.query("SELECT count() FROM voicenode.calls FINAL")) == 6
    assert int(await server.query("SELECT count() FROM voicenode.turns FINAL")) == 12
    lo, hi = T0 - DAY, T0 + 3 * DAY
    for group_by in ("day", "agent", "disposition", "transport"):
        from_ch = await summary_module.from_clickhouse(ch, "acme", lo, hi, group_by)
        from_sql = await summary_module.from_store(store, "acme", lo, hi, group_by)
        assert [msgspec_dict(g, barge=False) for g in from_ch] == [
            msgspec_dict(g, barge=False) for g in from_sql
        ], group_by
    # Retention looks at the parts of `voicenode.calls`/`turns`: a Distributed table has none,
    # so it drops nothing there (the months are dropped on the shards' tables by hand).
    far = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    assert await drop_expired(ch, {"acme": 1}, far) == []
    assert sum(await per_shard(server, "calls")) == 12
