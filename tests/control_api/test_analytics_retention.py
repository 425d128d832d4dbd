"""Retention per tenant against a real clickhouse-server: months entirely older than the
tenant's `analytics_retention_days` are dropped as whole partitions (calls and turns), the
months still within it kept, and other tenants' months untouched; the wall clock is injected."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import httpx
import pytest

from control_api.analytics import open_analytics
from control_api.analytics.clickhouse import ClickHouse, migrate
from control_api.analytics.retention import (
    Retention,
    first_kept_month,
    retention_days,
    set_retention_days,
)
from control_api.store import Store
from control_api.store.models import Tenant
from tests.control_api.test_analytics_clickhouse import ch_settings
from tests.support.analytics import FakeCalls, settings, store, wait_for
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server

__all__ = ["clickhouse_server", "store"]

MONTHS = (202607, 202608, 202609, 202610, 202611, 202612)
NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)


def test_a_month_goes_once_all_of_it_is_older_than_the_retention() -> None:
    assert first_kept_month(NOW, 60) == 202610  # 2026-10-08: October still holds kept days
    assert first_kept_month(NOW, 1) == 202612
    assert first_kept_month(datetime.datetime(2027, 1, 31, tzinfo=datetime.UTC), 31) == 202612
    assert first_kept_month(datetime.datetime(2027, 2, 1, tzinfo=datetime.UTC), 31) == 202701


@pytest.fixture
async def ch(clickhouse_server: ClickHouseServer) -> AsyncIterator[ClickHouse]:
    async with httpx.AsyncClient(trust_env=False) as http:
        ch = ClickHouse(ch_settings(clickhouse_server), http)
        await migrate(ch)
        yield ch


async def _fill(ch: ClickHouse, tenant: str) -> None:
    """One call and one turn on the 15th of each of `MONTHS`."""
    calls, turns = [], []
    for month in MONTHS:
        at = f"{month // 100}-{month % 100:02d}-15 10:00:00"
        call_id = f"{tenant}-{month}"
        calls.append({"call_id": call_id, "tenant_id": tenant, "started_at": at, "ended_at": at})
        turns.append({"call_id": call_id, "tenant_id": tenant, "seq": 0, "turn": 1, "at": at})
    await ch.insert("calls", calls)
    await ch.insert("turns", turns)


async def _months(server: ClickHouseServer, table: str, tenant: str) -> list[int]:
    column = "started_at" if table == "calls" else "at"
    text = await server.query(
        f"SELECT DISTINCT toYYYYMM({column}) AS m FROM voicenode.{table}"
        f" WHERE tenant_id = '{tenant}' ORDER BY m"  # test-side check, constant tenant names
    )
    return [int(line) for line in text.split()]


async def test_expired_months_of_a_tenant_are_dropped_and_nothing_else(
    ch: ClickHouse, clickhouse_server: ClickHouseServer, store: Store
) -> None:
    async with store.session() as session:
        for tenant in ("acme", "demo", "beta"):
            session.add(Tenant(id=tenant, name=tenant))
    await set_retention_days(store, "acme", 60)
    await set_retention_days(store, "beta", 400)  # longer than any month here
    assert await retention_days(store) == {"acme": 60, "beta": 400}
    for tenant in ("acme", "demo", "beta"):
        await _fill(ch, tenant)
    wall = [NOW]
    retention = Retention(store, ch, lambda: wall[0])

    dropped = await retention.pass_once()
    assert sorted((p.table, p.tenant_id, p.month) for p in dropped) == [
        (table, "acme", month) for table in ("calls", "turns") for month in (202607, 202608, 202609)
    ]
    for table in ("calls", "turns"):
        assert await _months(clickhouse_server, table, "acme") == [202610, 202611, 202612]
        assert await _months(clickhouse_server, table, "demo") == list(MONTHS)  # no retention
        assert await _months(clickhouse_server, table, "beta") == list(MONTHS)
    assert await retention.pass_once() == []  # nothing more until a month expires

    wall[0] = NOW + datetime.timedelta(days=31)  # 2027-01-07: cutoff 2026-11-08
    assert {p.month for p in await retention.pass_once()} == {202610}
    assert await _months(clickhouse_server, "calls", "acme") == [202611, 202612]
    await set_retention_days(store, "acme", None)  # kept forever from now on
    wall[0] = NOW + datetime.timedelta(days=3650)
    assert {p.tenant_id for p in await retention.pass_once()} == {"beta"}  # beta's 400 days
    assert await _months(clickhouse_server, "turns", "acme") == [202611, 202612]
    assert await _months(clickhouse_server, "calls", "beta") == []
    assert await _months(clickhouse_server, "calls", "demo") == list(MONTHS)


async def test_the_node_drops_expired_months_from_the_start(
    ch: ClickHouse, clickhouse_server: ClickHouseServer, store: Store
) -> None:
    async with store.session() as session:
        session.add_all([Tenant(id="acme", name="acme"), Tenant(id="demo", name="demo")])
    await set_retention_days(store, "acme", 60)
    await _fill(ch, "acme")
    await _fill(ch, "demo")
    conf = settings(clickhouse=ch_settings(clickhouse_server))
    async with open_analytics(conf, store, FakeCalls(), wall=lambda: NOW):

        async def dropped() -> bool:
            return await _months(clickhouse_server, "turns", "acme") == [202610, 202611, 202612]

        await wait_for(dropped, what="acme's expired months dropped by the node's own task")
        assert await _months(clickhouse_server, "calls", "acme") == [202610, 202611, 202612]
        assert await _months(clickhouse_server, "calls", "demo") == list(MONTHS)
