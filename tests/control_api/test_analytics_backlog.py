"""`voicenode_analytics_backlog` and `voicenode_analytics_lag_seconds` for the ClickHouse sink,
against a real clickhouse-server: they grow while it is down and return to 0 once the backlog
has landed."""

from __future__ import annotations

import datetime

from prometheus_client import REGISTRY

from control_api.analytics import open_analytics
from control_api.store import Store
from tests.control_api.test_analytics_clickhouse import _equals, run_call, with_clickhouse
from tests.support.analytics import FakeCalls, WallClock, store, wait_for
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server

__all__ = ["clickhouse_server", "store"]

EVENTS_PER_CALL = 5
"""`opening()` and `closing()`: call.started, two transcript.final, tool.called, call.ended."""


def gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name, {"sink": "clickhouse"})
    return -1.0 if value is None else value


async def test_backlog_and_lag_grow_during_an_outage_and_return_to_zero(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    calls, wall = FakeCalls(), WallClock()
    async with open_analytics(with_clickhouse(clickhouse_server), store, calls, wall=wall):
        await run_call(calls, "before")

        async def drained() -> bool:
            return (
                await _equals(clickhouse_server, "calls", 1)
                and gauge("voicenode_analytics_backlog") == 0
                and gauge("voicenode_analytics_lag_seconds") == 0
            )

        await wait_for(drained, what="the first call landed and no backlog")
        await clickhouse_server.stop()
        for n in range(3):
            await run_call(calls, f"during-{n}")

        async def backlog() -> bool:
            return gauge("voicenode_analytics_backlog") == 3 * EVENTS_PER_CALL

        await wait_for(backlog, what="the backlog counted while ClickHouse is down")
        wall.at += datetime.timedelta(minutes=5)  # the outage lasts

        async def lagging() -> bool:
            return gauge("voicenode_analytics_lag_seconds") >= 300

        await wait_for(lagging, what="the lag growing while ClickHouse is down")
        # nothing delivered meanwhile, nothing lost
        assert gauge("voicenode_analytics_backlog") == 3 * EVENTS_PER_CALL
        await clickhouse_server.start()

        async def recovered() -> bool:
            return (
                await _equals(clickhouse_server, "calls", 4)
                and gauge("voicenode_analytics_backlog") == 0
                and gauge("voicenode_analytics_lag_seconds") == 0
            )

        await wait_for(recovered, timeout_s=20, what="backlog and lag back to 0 after the restart")
