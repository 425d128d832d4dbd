"""Retention of tenants' analytics in ClickHouse: whole month partitions dropped.

A tenant's `analytics_retention_days` (the `tenants` table; None: kept forever) keeps that many
days; a month goes once all of it is older than that, so up to a month more is kept. The tables
are partitioned by `(tenant_id, toYYYYMM(time))`, so one tenant's month is one partition:
`ALTER TABLE ... DROP PARTITION ID` (ClickHouse 18.16 and current) removes it at once, with no
mutation and without touching another tenant's rows.

No value enters SQL text: the partitions are listed from `system.parts` (the database name goes
in the external table `p`), their `partition` text is parsed and matched here, and a
partition's id (a hex digest the server made, checked against `_PARTITION_ID`) is the only
thing written into the `DROP`.

`Retention.run` is an owned task of `open_analytics` (when ClickHouse is configured): a pass at
start, then every `every_s` on the injected clock; the wall clock says what "now" is.

The outbox's retention (`OutboxRetention`, with `analytics.outbox_retention_hours` > 0) runs
the same way on every node: its delivered events older than that go (`outbox.prune_delivered`:
taken by every sink, none dead-lettered, their call ended); undelivered ones stay.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, NamedTuple

from sqlalchemy import select

from control_api.analytics.clickhouse import ClickHouse, ClickHouseError
from control_api.analytics.outbox import prune_delivered
from control_api.store import Store
from control_api.store.models import Tenant
from media.clock import Clock

log = logging.getLogger(__name__)

TABLES: Final = ("calls", "turns")
RETENTION_EVERY_S: Final = 3600.0
"""How often the node looks for months to drop."""
OUTBOX_RETENTION_EVERY_S: Final = 900.0
"""How often the node looks for delivered outbox events past their retention."""
_PARTITION_ID: Final = re.compile(r"^[0-9a-f]{1,64}$")
_PARTITION: Final = re.compile(r"^\('([A-Za-z0-9_-]+)',(\d{6})\)$")
"""`(tenant_id, YYYYMM)` as `system.parts` writes it (tenant ids are `[A-Za-z0-9_-]+`)."""


class Partition(NamedTuple):
    table: str
    tenant_id: str
    month: int
    """YYYYMM."""
    partition_id: str


def first_kept_month(now: datetime.datetime, days: int) -> int:
    """The oldest month (YYYYMM) that still holds a day within `days` of `now`: every month
    before it is entirely older than the retention."""
    cutoff = now.astimezone(datetime.UTC) - datetime.timedelta(days=days)
    return cutoff.year * 100 + cutoff.month


async def retention_days(store: Store) -> dict[str, int]:
    """Tenants that keep their analytics a limited time, and for how many days."""
    async with store.session() as session:
        rows = await session.execute(
            select(Tenant.id, Tenant.analytics_retention_days).where(
                Tenant.analytics_retention_days.is_not(None)
            )
        )
        return {tenant: int(days) for tenant, days in rows.all() if days is not None}


async def set_retention_days(store: Store, tenant_id: str, days: int | None) -> None:
    """Keep `tenant_id`'s analytics `days` days (None: forever); KeyError: no such tenant."""
    if days is not None and days < 1:
        raise ValueError("analytics_retention_days must be at least 1")
    async with store.session() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise KeyError(tenant_id)
        tenant.analytics_retention_days = days


async def partitions(ch: ClickHouse) -> list[Partition]:
    """The active partitions of the analytics tables, parsed (others are left alone)."""
    rows = await ch.select(
        "SELECT DISTINCT table, partition_id, partition FROM system.parts"
        " WHERE active AND database = (SELECT db FROM p) AND table IN ('calls', 'turns')",
        {"db": ch.database},
        "db String",
    )
    found = []
    for row in rows:
        match = _PARTITION.match(str(row["partition"]))
        pid = str(row["partition_id"])
        if match is None or not _PARTITION_ID.match(pid) or row["table"] not in TABLES:
            log.warning("analytics partition not understood; kept", extra={"table": row["table"]})
            continue
        found.append(Partition(row["table"], match.group(1), int(match.group(2)), pid))
    return sorted(found)


async def drop_expired(
    ch: ClickHouse, days: Mapping[str, int], now: datetime.datetime
) -> list[Partition]:
    """Drop every partition of a tenant in `days` whose month is entirely older than its
    retention; returns the partitions dropped."""
    dropped = []
    for part in await partitions(ch):
        keep = days.get(part.tenant_id)
        if keep is None or part.month >= first_kept_month(now, keep):
            continue
        # table: one of TABLES; partition_id: the server's hex digest (checked above)
        await ch.execute(
            f"ALTER TABLE {ch.database}.{part.table} DROP PARTITION ID '{part.partition_id}'"
        )
        log.info(
            "analytics month dropped",
            extra={"tenant_id": part.tenant_id, "table": part.table, "month": part.month},
        )
        dropped.append(part)
    return dropped


class Retention:
    """Drops expired months of every tenant with a retention setting."""

    def __init__(self, store: Store, ch: ClickHouse, wall: Callable[[], datetime.datetime]) -> None:
        self._store = store
        self._ch = ch
        self._wall = wall

    async def pass_once(self) -> list[Partition]:
        days = await retention_days(self._store)
        if not days:
            return []
        return await drop_expired(self._ch, days, self._wall())

    async def run(self, clock: Clock, every_s: float = RETENTION_EVERY_S) -> None:
        """A pass now and every `every_s` until cancelled (ClickHouse down: the next pass)."""
        await repeat(self.pass_once, clock, every_s, "analytics retention pass failed")


class OutboxRetention:
    """Deletes this node's delivered outbox events older than `hours` (see `prune_delivered`);
    `sinks`: the keys of the node's batch sinks (webhooks are read from the store)."""

    def __init__(
        self,
        store: Store,
        node: str,
        sinks: Sequence[str],
        hours: int,
        wall: Callable[[], datetime.datetime],
    ) -> None:
        self._store = store
        self._node = node
        self._sinks = tuple(sinks)
        self._age = datetime.timedelta(hours=hours)
        self._wall = wall

    async def pass_once(self) -> int:
        pruned = await prune_delivered(
            self._store, self._node, self._sinks, self._wall() - self._age
        )
        if pruned:
            log.info("delivered outbox events pruned", extra={"node": self._node, "count": pruned})
        return pruned

    async def run(self, clock: Clock, every_s: float = OUTBOX_RETENTION_EVERY_S) -> None:
        """A pass now and every `every_s` until cancelled (a failed pass: the next one)."""
        await repeat(self.pass_once, clock, every_s, "outbox retention pass failed")


async def repeat(
    pass_once: Callable[[], Awaitable[object]], clock: Clock, every_s: float, failed: str
) -> None:
    """`pass_once` now and every `every_s` on `clock` until cancelled; a pass that fails is
    logged (`failed`, the message) and the next one tries again."""
    while True:
        try:
            await pass_once()
        except ClickHouseError as exc:
            log.warning(failed, extra={"error": exc.detail})
        except Exception:
            log.exception(failed)
        await clock.sleep_until(clock.now() + every_s)
