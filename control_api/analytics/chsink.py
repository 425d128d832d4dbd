"""The ClickHouse sink: outbox events as rows of the `calls` and `turns` tables.

`transcript.final` → one `turns` row (version: the event's `seq`; an agent line's reply latency
per stage in the `<stage>_ms` columns, null where its turn had no marks); `call.ended` → one `calls`
row, completed from the node's call record (which `call.ended` closes in the same
transaction, so it is complete when the event is relayed). `subject.erased` and
`tenant.deleted` delete what they name from both tables (`cherasure`: a mutation, or the
tenant's partitions dropped), in the batch's order: the rows before such an event are inserted
before its delete, the rows after it after. Other events carry nothing these tables keep and
count as delivered.

A batch is two inserts (`calls` and `turns`, at once). Unreachable, or any error but a
refused value: `DeliveryError`, the relay retries the whole batch; rows that landed before land
again, and ReplacingMergeTree keeps one per key (`SELECT ... FINAL` never counts them twice).
A refused value (`ROW_REFUSAL_CODES`): the insert is split in halves until the refused rows are
alone; they are returned (dead letters) and the rest lands. An erasure the tables cannot carry
out (Distributed tables: `NOT_IMPLEMENTED`) is returned too, logged at error level, and the
batch goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Final

import httpx
import msgspec
from sqlalchemy import select

from config.clickhouse import ClickHouseSettings
from control_api.analytics.batches import Lane, Refusal
from control_api.analytics.cherasure import erase_calls, erase_tenant
from control_api.analytics.clickhouse import (
    NOT_IMPLEMENTED,
    TURN_STAGES,
    ClickHouse,
    ClickHouseError,
    migrate,
    to_datetime,
)
from control_api.analytics.events import (
    CallEndedEvent,
    SubjectErasedEvent,
    TenantDeletedEvent,
    TranscriptFinalEvent,
    decode_event,
)
from control_api.analytics.sinks import DeliveryError
from control_api.analytics.tables import CallRow, OutboxRow
from control_api.store import Store

log = logging.getLogger(__name__)

_Item = tuple[OutboxRow, dict[str, Any]]


_STAGE_COLUMNS: Final = tuple((stage, f"{stage}_ms") for stage in TURN_STAGES)
ERASURES: Final = frozenset({"subject.erased", "tenant.deleted"})
_DECODE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError, ValueError)


def segments(rows: Sequence[OutboxRow]) -> list[tuple[list[OutboxRow], OutboxRow | None]]:
    """`rows` cut after each erasure: (the rows before it, the erasure), in order; the last
    segment's erasure is None."""
    cut: list[tuple[list[OutboxRow], OutboxRow | None]] = []
    pending: list[OutboxRow] = []
    for row in rows:
        if row.type in ERASURES:
            cut.append((pending, row))
            pending = []
        else:
            pending.append(row)
    if pending or not cut:
        cut.append((pending, None))
    return cut


def turn_row(event: TranscriptFinalEvent) -> dict[str, Any]:
    row = {
        "call_id": event.call_id,
        "tenant_id": event.tenant_id,
        "seq": event.seq,
        "turn": event.turn,
        "role": event.role,
        "text": event.text,
        "interrupted": int(event.interrupted),
        "at": to_datetime(event.at),
        "version": event.seq,
    }
    stages = event.stages_ms
    for stage, column in _STAGE_COLUMNS:  # names made once, not per row
        row[column] = stages.get(stage)
    return row


def call_row(call: CallRow, event: CallEndedEvent) -> dict[str, Any]:
    lines = call.transcript or []
    agent_lines = [line for line in lines if line.get("role") == "agent"]
    outcome = event.outcome
    return {
        "call_id": call.id,
        "tenant_id": call.tenant_id,
        "node": call.node,
        "agent": call.agent,
        "agent_version": call.agent_version or 0,
        "direction": call.direction,
        "transport": call.transport,
        "from_uri": call.from_uri,
        "to_uri": call.to_uri,
        "started_at": call.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        "ended_at": to_datetime(event.at),
        "duration_s": event.duration_s,
        "end_reason": event.reason,
        "disposition": outcome.disposition,
        "summary": outcome.summary,
        "sentiment": outcome.sentiment.label,
        "sentiment_score": outcome.sentiment.score,
        "outcome_source": outcome.source,
        "slots": json.dumps(dict(outcome.slots), ensure_ascii=False),
        "turns": len(lines),
        "agent_turns": len(agent_lines),
        "barge_ins": sum(1 for line in agent_lines if line.get("interrupted")),
        "v2v_p50_ms": event.latency.voice_to_voice_ms_p50,
        "v2v_p95_ms": event.latency.voice_to_voice_ms_p95,
        "version": event.seq,
    }


class ClickHouseSink:
    """Writes outbox rows to ClickHouse (`migrate` first; a failed migration is retried on the
    next batch)."""

    key = "clickhouse"

    def __init__(self, ch: ClickHouse, store: Store) -> None:
        self.ch = ch
        self._store = store
        self._migrated = False

    async def migrate(self) -> None:
        """Bring the schema up to date (`ClickHouseSchemaError`: newer than this node)."""
        applied = await migrate(self.ch)
        self._migrated = True
        if applied:
            log.info("clickhouse schema migrated", extra={"versions": applied})

    async def send_batch(self, rows: Sequence[OutboxRow]) -> list[Refusal]:
        refused: list[Refusal] = []
        try:
            if not self._migrated:
                await self.migrate()
            for before, erasure in segments(rows):
                await self._write(before, refused)
                if erasure is not None:
                    await self._erase(erasure, refused)
        except ClickHouseError as exc:
            raise DeliveryError(exc.detail) from exc
        return refused

    async def _write(self, rows: Sequence[OutboxRow], refused: list[Refusal]) -> None:
        calls, turns, bad = await self._items(rows)
        refused += bad
        inserts = [
            self._insert(table, items, refused)
            for table, items in (("calls", calls), ("turns", turns))
            if items
        ]
        # Both at once (the server writes one table's parts while the other's rows travel);
        # both finish before a failure is raised, so a retry never overlaps a late insert.
        failures = [
            r for r in await asyncio.gather(*inserts, return_exceptions=True) if r is not None
        ]
        if failures:
            raise failures[0]

    async def _erase(self, row: OutboxRow, refused: list[Refusal]) -> None:
        """Carry out a `subject.erased` or `tenant.deleted` (returns once ClickHouse accepted
        its deletes; a retried one finds nothing left to delete)."""
        try:
            event = decode_event(row.payload)
        except _DECODE_ERRORS as exc:
            refused.append(Refusal(row, f"bad event: {type(exc).__name__}"))
            return
        extra: dict[str, object] = {
            "tenant_id": event.tenant_id,
            "event_id": row.event_id,
            "type": row.type,
        }
        try:
            if isinstance(event, SubjectErasedEvent):
                done = await erase_calls(self.ch, event.tenant_id, event.call_ids)
                extra["calls"] = len(event.call_ids)
            elif isinstance(event, TenantDeletedEvent):
                done = await erase_tenant(self.ch, event.tenant_id)
            else:
                refused.append(Refusal(row, "not an erasure"))
                return
        except ClickHouseError as exc:
            if exc.code != NOT_IMPLEMENTED:
                raise
            log.error("clickhouse cannot delete an erasure's rows", extra=extra)
            reason = f"clickhouse cannot delete from these tables (Distributed?): {exc.detail}"
            refused.append(Refusal(row, reason))
            return
        extra |= {"partitions_dropped": done.dropped, "mutations": done.mutations}
        log.info("clickhouse rows of an erasure deleted", extra=extra)

    async def _items(
        self, rows: Sequence[OutboxRow]
    ) -> tuple[list[_Item], list[_Item], list[Refusal]]:
        ended = [r for r in rows if r.type == "call.ended"]
        records: dict[str, CallRow] = {}
        if ended:
            async with self._store.session() as session:
                found = await session.scalars(
                    select(CallRow).where(CallRow.id.in_([r.call_id for r in ended]))
                )
                records = {c.id: c for c in found}
        calls: list[_Item] = []
        turns: list[_Item] = []
        refused: list[Refusal] = []
        for row in rows:
            if row.type not in ("call.ended", "transcript.final"):
                continue
            try:
                event = decode_event(row.payload)
                if isinstance(event, TranscriptFinalEvent):
                    turns.append((row, turn_row(event)))
                elif isinstance(event, CallEndedEvent):
                    record = records.get(row.call_id)
                    if record is None:
                        refused.append(Refusal(row, "no call record for call.ended"))
                        continue
                    calls.append((row, call_row(record, event)))
            except _DECODE_ERRORS as exc:
                refused.append(Refusal(row, f"bad event: {type(exc).__name__}"))
        return calls, turns, refused

    async def _insert(self, table: str, items: Sequence[_Item], refused: list[Refusal]) -> None:
        try:
            await self.ch.insert(table, [values for _row, values in items])
        except ClickHouseError as exc:
            if not exc.refuses_rows:
                raise
            if len(items) == 1:
                refused.append(Refusal(items[0][0], f"clickhouse refused the row: {exc.detail}"))
                return
            half = len(items) // 2
            await self._insert(table, items[:half], refused)
            await self._insert(table, items[half:], refused)


def open_clickhouse_lane(
    settings: ClickHouseSettings, store: Store, http: httpx.AsyncClient
) -> Lane | None:
    """The relay lane of the ClickHouse sink; None while `url` is empty."""
    if not settings.url:
        return None
    sink = ClickHouseSink(ClickHouse(settings, http), store)
    return Lane(
        sink,
        batch_size=settings.batch_size,
        backoff_s=settings.backoff_s,
        backoff_max_s=settings.backoff_max_s,
        flush_after_s=settings.flush_interval_s,
    )
