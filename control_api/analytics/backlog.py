"""The relay's backlog per batch sink (the Redis Stream, ClickHouse), as Prometheus gauges:
`voicenode_analytics_backlog{sink}` (this node's outbox rows the sink has not taken yet) and
`voicenode_analytics_lag_seconds{sink}` (how old the oldest of them is, by its event time on
the injected wall clock; 0 when none waits).

`meter(...)` is an owned task of `open_analytics`: it measures every `every_s` on the relay's
clock, so the gauges move during an outage too (while the relay only backs off). Webhooks are
not metered here: one label per tenant endpoint would be an unbounded label set.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

from sqlalchemy import and_, func, select

from control_api.analytics.tables import OutboxRow, RelayMarkRow
from control_api.metrics import ANALYTICS_BACKLOG, ANALYTICS_LAG
from control_api.store import Store
from media.clock import Clock

log = logging.getLogger(__name__)


class Backlog(NamedTuple):
    rows: int
    """Outbox rows of this node above the sink's marks."""
    lag_s: float
    """Age of the oldest of them (0 when there is none)."""


async def measure(
    store: Store, node: str, sink: str, now: datetime.datetime, after: int = 0
) -> Backlog:
    """`sink`'s backlog on `node`; `after`: an outbox id below which every row is known to
    be delivered (the relay's floor), so the count does not scan the whole outbox."""
    async with store.session() as session:
        found = (
            await session.execute(
                select(func.count(OutboxRow.id), func.min(OutboxRow.created_at))
                .outerjoin(
                    RelayMarkRow,
                    and_(RelayMarkRow.sink == sink, RelayMarkRow.call_id == OutboxRow.call_id),
                )
                .where(
                    OutboxRow.node == node,
                    OutboxRow.id > after,
                    OutboxRow.seq > func.coalesce(RelayMarkRow.delivered_seq, -1),
                )
            )
        ).one()
    rows, oldest = int(found[0] or 0), found[1]
    if not rows or oldest is None:
        return Backlog(0, 0.0)
    if oldest.tzinfo is None:  # SQLite gives the aggregate back as naive UTC
        oldest = oldest.replace(tzinfo=datetime.UTC)
    return Backlog(rows, max(0.0, (now - oldest).total_seconds()))


def export(sink: str, backlog: Backlog) -> None:
    ANALYTICS_BACKLOG.labels(sink=sink).set(backlog.rows)
    ANALYTICS_LAG.labels(sink=sink).set(backlog.lag_s)


async def meter(
    store: Store,
    node: str,
    sinks: Sequence[str],
    *,
    clock: Clock,
    wall: Callable[[], datetime.datetime],
    every_s: float,
    floor: Callable[[str], int] = lambda _sink: 0,
) -> None:
    """Export each of `sinks`' backlog now and every `every_s` until cancelled."""
    while True:
        for sink in sinks:
            try:
                export(sink, await measure(store, node, sink, wall(), floor(sink)))
            except Exception:
                log.exception("analytics backlog not measured", extra={"sink": sink})
        await clock.sleep_until(clock.now() + every_s)
