"""Erasures followed in ClickHouse: what `subject.erased` and `tenant.deleted` name goes from
the tables the sink writes (`calls`, `turns`).

- `subject.erased`: the tenant's rows of the erased calls (`call_ids`) are deleted by a mutation
  per table (`ALTER TABLE … DELETE WHERE tenant_id = … AND call_id IN (…)`; ClickHouse 18.16 and
  current servers), `MUTATION_CALLS` calls per statement at most.
- `tenant.deleted`: the tenant's partitions (tenant × month, see `retention`) are dropped
  (`DROP PARTITION ID`: at once, no mutation, no other tenant's part rewritten); rows of the
  tenant still found after that (in a partition not understood) are deleted by a mutation.

A mutation runs in the background: the server answers the ALTER once it has recorded the
mutation (on disk; a restarted server carries on with it), and that is when the sink counts the
event delivered. A table that holds none of the rows gets no statement, so an event delivered
again after its rows went is a no-op; one delivered again while its mutation still runs queues
a second one, which finds nothing more to delete.

Tables that cannot delete (the Distributed tables of a cluster, `NOT_IMPLEMENTED`) raise
`ClickHouseError` with that code: the sink dead-letters the event (operators delete on the
shards' local tables, see docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from control_api.analytics.clickhouse import ClickHouse, hex_literal
from control_api.analytics.retention import TABLES, partitions

MUTATION_CALLS: Final = 1000
"""Call ids per mutation: at most about 140 kB of SQL (ids of 64 characters), under the
server's `max_query_size` (256 KiB by default), which the whole statement must fit."""


class Erased(NamedTuple):
    """What one event took: partitions dropped, mutations queued."""

    dropped: int = 0
    mutations: int = 0


async def held(ch: ClickHouse, table: str, tenant_id: str, call_ids: Sequence[str] | None) -> int:
    """Rows of `tenant_id` in `table` (of `call_ids` only, unless None), not yet deleted."""
    sql = f"SELECT count() AS n FROM {ch.database}.{table} WHERE tenant_id = (SELECT t FROM p)"
    if call_ids is not None:
        sql += " AND call_id IN (SELECT arrayJoin(c) FROM p)"
    params = {"t": tenant_id, "c": list(call_ids or ())}
    rows = await ch.select(sql, params, "t String, c Array(String)")
    return int(rows[0]["n"])


async def erase_calls(ch: ClickHouse, tenant_id: str, call_ids: Sequence[str]) -> Erased:
    """Delete `tenant_id`'s rows of `call_ids` from every table the sink writes."""
    ids = sorted(set(call_ids))
    mutations = 0
    if not ids:
        return Erased()
    tenant = hex_literal(tenant_id)
    for table in TABLES:
        if not await held(ch, table, tenant_id, ids):
            continue
        for start in range(0, len(ids), MUTATION_CALLS):
            chunk = ", ".join(hex_literal(i) for i in ids[start : start + MUTATION_CALLS])
            await ch.delete_where(table, f"tenant_id = {tenant} AND call_id IN ({chunk})")
            mutations += 1
    return Erased(mutations=mutations)


async def erase_tenant(ch: ClickHouse, tenant_id: str) -> Erased:
    """Delete every row of `tenant_id` from every table the sink writes."""
    dropped = mutations = 0
    for part in await partitions(ch):
        if part.tenant_id != tenant_id:
            continue
        # table: one of TABLES; partition_id: the server's hex digest (checked by `partitions`)
        await ch.execute(
            f"ALTER TABLE {ch.database}.{part.table} DROP PARTITION ID '{part.partition_id}'"
        )
        dropped += 1
    for table in TABLES:
        if await held(ch, table, tenant_id, None):
            await ch.delete_where(table, f"tenant_id = {hex_literal(tenant_id)}")
            mutations += 1
    return Erased(dropped, mutations)
