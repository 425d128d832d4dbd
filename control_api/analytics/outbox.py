"""Writing events: each goes to the outbox in the same transaction as the call record it
changes (`call.started` inserts the `calls` row, `call.ended` completes it). And recovery: on
start, this node's calls that never ended (the process was killed) are closed as failed with a
`call.ended` event, so they are recorded, not lost. And pruning (`prune_delivered`): the
delivered events past `analytics.outbox_retention_hours` go (`analytics.retention` runs it).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import msgspec
from sqlalchemy import ColumnElement, and_, delete, exists, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from agents.base import Message
from agents.outcome import CallFacts, rules_outcome
from control_api.analytics.events import (
    AnalyticsEvent,
    CallEndedEvent,
    CallStartedEvent,
    LatencySummary,
    TranscriptFinalEvent,
    decode_event,
    encode_event,
    event_type,
    iso,
)
from control_api.analytics.tables import (
    CallRow,
    DeadLetterRow,
    OutboxRow,
    RelayMarkRow,
    WebhookRow,
)
from control_api.store import Store

log = logging.getLogger(__name__)

RECOVERED_REASON = "node_restarted"
PRUNE_BATCH = 1000
"""Outbox rows deleted per transaction."""


def _when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def transcript_of(session: AsyncSession, call_id: str) -> list[dict[str, Any]]:
    """The call's final transcript lines, from its `transcript.final` events."""
    rows = await session.scalars(
        select(OutboxRow.payload)
        .where(OutboxRow.call_id == call_id, OutboxRow.type == "transcript.final")
        .order_by(OutboxRow.seq)
    )
    lines: list[dict[str, Any]] = []
    for payload in rows:
        event = decode_event(payload)
        assert isinstance(event, TranscriptFinalEvent)
        lines.append(transcript_line(event))
    return lines


def transcript_line(event: TranscriptFinalEvent) -> dict[str, Any]:
    """A line of a call record's transcript (`CallRow.transcript`)."""
    return {
        "role": event.role,
        "text": event.text,
        "turn": event.turn,
        "interrupted": event.interrupted,
        "at": event.at,
        "redacted": list(event.redacted),
    }


class OutboxColumns(TypedDict):
    """An outbox row's values but its id (the store gives it)."""

    event_id: str
    call_id: str
    tenant_id: str
    node: str
    seq: int
    type: str
    payload: str
    created_at: datetime.datetime


def outbox_columns(event: AnalyticsEvent, node: str) -> OutboxColumns:
    """The outbox row of `event`, written by `node` (`write_events` adds it)."""
    return OutboxColumns(
        event_id=event.id,
        call_id=event.call_id,
        tenant_id=event.tenant_id,
        node=node,
        seq=event.seq,
        type=event_type(event),
        payload=encode_event(event).decode(),
        created_at=_when(event.at),
    )


def started_record(event: CallStartedEvent, node: str) -> CallRow:
    """The call's record as `call.started` inserts it."""
    return CallRow(
        id=event.call_id,
        tenant_id=event.tenant_id,
        agent=event.agent,
        agent_version=event.agent_version,
        node=node,
        direction=event.direction,
        transport=event.transport,
        from_uri=event.from_uri,
        to_uri=event.to_uri,
        started_at=_when(event.at),
    )


def end_record(call: CallRow, event: CallEndedEvent) -> None:
    """Complete the call's record with its `call.ended` (all but the transcript, which
    `write_events` reads from the outbox: `transcript_of`)."""
    outcome = event.outcome
    call.ended_at = _when(event.at)
    call.end_reason = event.reason
    call.duration_s = event.duration_s
    call.disposition = outcome.disposition
    call.summary = outcome.summary
    call.sentiment = outcome.sentiment.label
    call.sentiment_score = outcome.sentiment.score
    call.outcome_source = outcome.source
    call.slots = dict(outcome.slots)
    call.latency = msgspec.to_builtins(event.latency)


async def write_events(session: AsyncSession, events: Sequence[AnalyticsEvent], node: str) -> None:
    """Add `events` (and the call-record changes they carry) to the session's transaction."""
    for event in events:
        session.add(OutboxRow(**outbox_columns(event, node)))
        if isinstance(event, CallStartedEvent):
            session.add(started_record(event, node))
        elif isinstance(event, CallEndedEvent):
            await session.flush()
            call = await session.get(CallRow, event.call_id)
            if call is None:  # its call.started was dropped: still record the call
                call = CallRow(
                    id=event.call_id,
                    tenant_id=event.tenant_id,
                    agent="",
                    node=node,
                    direction="",
                    transport="",
                    started_at=_when(event.at),
                )
                session.add(call)
            end_record(call, event)
            call.transcript = await transcript_of(session, event.call_id)


async def recover_unfinished(
    store: Store, node: str, now: Callable[[], datetime.datetime]
) -> list[str]:
    """Close this node's calls that have no end as failed (reason `node_restarted`), each with
    a `call.ended` event after its last one. Returns their ids."""
    closed: list[str] = []
    async with store.session() as session:
        open_calls = (
            await session.scalars(
                select(CallRow).where(CallRow.node == node, CallRow.ended_at.is_(None))
            )
        ).all()
        for call in open_calls:
            last = await session.scalar(
                select(func.max(OutboxRow.seq)).where(OutboxRow.call_id == call.id)
            )
            lines = await transcript_of(session, call.id)
            at = now()
            started = call.started_at
            if started.tzinfo is None:
                started = started.replace(tzinfo=datetime.UTC)
            duration = max(0.0, (at - started).total_seconds())
            facts = CallFacts(
                reason="failed",
                duration_s=duration,
                transcript=tuple(
                    Message(
                        role="user" if line["role"] == "user" else "assistant",
                        text=line["text"],
                        interrupted=bool(line["interrupted"]),
                    )
                    for line in lines
                ),
            )
            outcome = rules_outcome(facts)
            outcome = msgspec.structs.replace(
                outcome, summary=f"The node stopped during the call. {outcome.summary}"
            )
            seq = (last if last is not None else -1) + 1
            event = CallEndedEvent(
                id=f"{call.id}:{seq}",
                call_id=call.id,
                tenant_id=call.tenant_id,
                seq=seq,
                at=iso(at),
                reason=RECOVERED_REASON,
                duration_s=round(duration, 3),
                outcome=outcome,
                latency=LatencySummary(),
            )
            await write_events(session, [event], node)
            closed.append(call.id)
            log.warning(
                "call left open by a stopped node recorded as failed",
                extra={"call_id": call.id, "tenant_id": call.tenant_id, "node": node},
            )
    return closed


def _taken(sink: Any) -> Any:
    """The row's call has a mark of `sink` (a name, or a column) at or past the row."""
    taken = exists().where(
        RelayMarkRow.sink == sink,
        RelayMarkRow.call_id == OutboxRow.call_id,
        RelayMarkRow.delivered_seq >= OutboxRow.seq,
    )
    return taken.correlate_except(RelayMarkRow)  # the outbox row (and webhook) of the query


def delivered(sinks: Sequence[str]) -> ColumnElement[bool]:
    """The condition on an outbox row that it is delivered: each of `sinks` (the node's batch
    sinks) and each webhook of its tenant that was there when it was written has taken it (the
    sink's mark of its call is at or past its `seq`), no sink dead-lettered it, and its call
    has ended (the call record's transcript is read from the outbox at its end). A row that no
    sink would send is not delivered: a sink added later may take it."""
    hooks = (WebhookRow.tenant_id == OutboxRow.tenant_id, WebhookRow.after_outbox_id < OutboxRow.id)
    return and_(
        *[_taken(sink) for sink in sinks],
        true() if sinks else exists().where(*hooks),
        ~exists().where(*hooks, ~_taken(literal("webhook:") + WebhookRow.id)),
        ~exists().where(DeadLetterRow.event_id == OutboxRow.event_id),
        ~exists().where(CallRow.id == OutboxRow.call_id, CallRow.ended_at.is_(None)),
    )


async def prune_delivered(
    store: Store,
    node: str,
    sinks: Sequence[str],
    before: datetime.datetime,
    *,
    batch: int = PRUNE_BATCH,
) -> int:
    """Delete `node`'s outbox rows written before `before` that are `delivered` to `sinks`,
    `batch` at a time, and the relay marks of calls with no row left; the rows deleted.
    Undelivered rows stay, however old."""
    pruned = 0
    while True:
        async with store.session() as session:
            found = (
                await session.execute(
                    select(OutboxRow.id, OutboxRow.call_id)
                    .where(
                        OutboxRow.node == node,
                        OutboxRow.created_at < before,
                        delivered(sinks),
                    )
                    .order_by(OutboxRow.id)
                    .limit(batch)
                )
            ).all()
            if not found:
                return pruned
            await session.execute(delete(OutboxRow).where(OutboxRow.id.in_([i for i, _ in found])))
            calls = sorted({call for _, call in found})
            await session.execute(
                delete(RelayMarkRow).where(
                    RelayMarkRow.call_id.in_(calls),
                    ~exists().where(OutboxRow.call_id == RelayMarkRow.call_id),
                )
            )
        pruned += len(found)
        if len(found) < batch:
            return pruned
