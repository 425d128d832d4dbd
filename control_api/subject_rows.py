"""A data subject's rows in the store, for `control_api.subjects_api`: found, read for an
export, erased.

What is the subject's, in one tenant (every query names it):

- the calls whose number is theirs (`store.subjects.is_subject`: the caller of an inbound call,
  the callee of an outbound one), and the calls of their campaign contacts' attempts;
- of those calls: the call record (with its transcript, outcome and latency), every outbox
  event (delivered or not: the payloads carry the number and the transcript), the relay's
  marks and the dead letters;
- their campaign contacts (`campaign_contacts` with the number, E.164 as campaigns store it),
  the attempts made on them and their `contact.attempted` events (ids only, but they tie the
  contact to its calls).

Finding reads every call of the tenant's (the id, direction and the two URIs only), since a
number is stored in many forms (`store.subjects`). A call not yet ended, or a contact a
dialler holds, makes the subject `Busy`: an erasure then would be undone by the events the call
still writes, so it is refused until the call ends.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.analytics.events import SubjectErasedEvent, iso
from control_api.analytics.outbox import outbox_columns
from control_api.analytics.tables import CallRow, DeadLetterRow, OutboxRow, RelayMarkRow
from control_api.campaigns.rows import AttemptRow, CampaignRow, ContactRow
from control_api.store.subjects import SubjectRequestRow, is_subject

SCAN_BATCH = 1000
"""Calls read at a time while looking for the subject's."""


class Busy(Exception):
    """The subject has a call still going (or a contact a dialler holds)."""

    def __init__(self, call_ids: Sequence[str], contacts: int) -> None:
        super().__init__("the subject has a call in progress")
        self.call_ids = list(call_ids)
        self.contacts = contacts


@dataclasses.dataclass(frozen=True, slots=True)
class SubjectRows:
    """What the store holds of one subject in one tenant."""

    calls: list[CallRow]
    """Oldest first."""
    contacts: list[ContactRow]
    attempts: list[AttemptRow]
    campaign_names: dict[str, str]

    @property
    def call_ids(self) -> list[str]:
        return [call.id for call in self.calls]

    @property
    def attempt_event_ids(self) -> list[str]:
        """The outbox `call_id`s of the contacts' `contact.attempted` events
        (`att_<campaign>_<contact>_<attempt>`; attempt 0: ended as do_not_call)."""
        return [
            f"att_{c.campaign_id}_{c.id}_{attempt}"
            for c in self.contacts
            for attempt in range(c.attempts + 1)
        ]


def _aware(at: datetime.datetime | None) -> datetime.datetime | None:
    return at.replace(tzinfo=datetime.UTC) if at is not None and at.tzinfo is None else at


async def _matching_call_ids(session: AsyncSession, tenant_id: str, e164: str) -> set[str]:
    stmt = (
        select(CallRow.id, CallRow.direction, CallRow.from_uri, CallRow.to_uri)
        .where(CallRow.tenant_id == tenant_id)
        .execution_options(yield_per=SCAN_BATCH)
    )
    found: set[str] = set()
    result = await session.stream(stmt)
    async for call_id, direction, from_uri, to_uri in result:
        if is_subject(direction, from_uri, to_uri, e164):
            found.add(call_id)
    return found


async def find_subject(session: AsyncSession, tenant_id: str, e164: str) -> SubjectRows:
    """The subject's calls, campaign contacts and their attempts in `tenant_id`."""
    ids = await _matching_call_ids(session, tenant_id, e164)
    contacts = list(
        (
            await session.scalars(
                select(ContactRow)
                .where(ContactRow.tenant_id == tenant_id, ContactRow.number == e164)
                .order_by(ContactRow.id)
            )
        ).all()
    )
    attempts: list[AttemptRow] = []
    names: dict[str, str] = {}
    if contacts:
        attempts = list(
            (
                await session.scalars(
                    select(AttemptRow)
                    .where(
                        AttemptRow.tenant_id == tenant_id,
                        AttemptRow.contact_id.in_([c.id for c in contacts]),
                    )
                    .order_by(AttemptRow.contact_id, AttemptRow.attempt)
                )
            ).all()
        )
        ids.update(a.call_id for a in attempts if a.call_id is not None)
        rows = await session.execute(
            select(CampaignRow.id, CampaignRow.name).where(
                CampaignRow.tenant_id == tenant_id,
                CampaignRow.id.in_({c.campaign_id for c in contacts}),
            )
        )
        names = {campaign_id: name for campaign_id, name in rows.all()}
    calls: list[CallRow] = []
    if ids:
        calls = list(
            (
                await session.scalars(
                    select(CallRow)
                    .where(CallRow.tenant_id == tenant_id, CallRow.id.in_(sorted(ids)))
                    .order_by(CallRow.started_at, CallRow.id)
                )
            ).all()
        )
    return SubjectRows(calls, contacts, attempts, names)


def check_not_busy(found: SubjectRows, now: datetime.datetime) -> None:
    """`Busy` when one of the subject's calls has not ended or a dialler holds a contact."""
    live = [call.id for call in found.calls if call.ended_at is None]
    held = [
        c
        for c in found.contacts
        if c.lease_owner is not None
        and (expires := _aware(c.lease_expires_at)) is not None
        and expires > now
    ]
    if live or held:
        raise Busy(live, len(held))


async def events_of(
    session: AsyncSession, tenant_id: str, call_ids: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each call's outbox events (as delivered: the JSON objects), in `seq` order."""
    events: dict[str, list[dict[str, Any]]] = {call_id: [] for call_id in call_ids}
    if not call_ids:
        return events
    rows = await session.execute(
        select(OutboxRow.call_id, OutboxRow.payload)
        .where(OutboxRow.tenant_id == tenant_id, OutboxRow.call_id.in_(list(call_ids)))
        .order_by(OutboxRow.call_id, OutboxRow.seq)
    )
    for call_id, payload in rows.all():
        events[call_id].append(json.loads(payload))
    return events


async def erase_rows(session: AsyncSession, tenant_id: str, found: SubjectRows) -> dict[str, int]:
    """Delete what `found` holds (see the module docstring); how many of each."""
    ids = found.call_ids + found.attempt_event_ids
    counts = {
        "calls": len(found.calls),
        "transcript_lines": sum(len(call.transcript or []) for call in found.calls),
        "events": 0,
        "dead_letters": 0,
        "campaign_contacts": len(found.contacts),
        "campaign_attempts": len(found.attempts),
    }
    if ids:
        events = await session.execute(
            delete(OutboxRow).where(OutboxRow.tenant_id == tenant_id, OutboxRow.call_id.in_(ids))
        )
        counts["events"] = events.rowcount  # type: ignore[attr-defined]
        dead = await session.execute(
            delete(DeadLetterRow).where(
                DeadLetterRow.tenant_id == tenant_id, DeadLetterRow.call_id.in_(ids)
            )
        )
        counts["dead_letters"] = dead.rowcount  # type: ignore[attr-defined]
        await session.execute(delete(RelayMarkRow).where(RelayMarkRow.call_id.in_(ids)))
    if found.calls:
        await session.execute(
            delete(CallRow).where(CallRow.tenant_id == tenant_id, CallRow.id.in_(found.call_ids))
        )
    if found.attempts:
        await session.execute(
            delete(AttemptRow).where(
                AttemptRow.tenant_id == tenant_id,
                AttemptRow.id.in_([a.id for a in found.attempts]),
            )
        )
    if found.contacts:
        await session.execute(
            delete(ContactRow).where(
                ContactRow.tenant_id == tenant_id,
                ContactRow.id.in_([c.id for c in found.contacts]),
            )
        )
    return counts


def audit_row(
    request_id: str,
    tenant_id: str,
    *,
    kind: str,
    ref: str,
    actor: str,
    at: datetime.datetime,
    counts: dict[str, int],
) -> SubjectRequestRow:
    """The audit record of one request (never the number: `ref`)."""
    return SubjectRequestRow(
        id=request_id,
        tenant_id=tenant_id,
        kind=kind,
        subject_ref=ref,
        actor=actor,
        at=at,
        counts=dict(counts),
    )


def erased_event(
    request_id: str,
    tenant_id: str,
    *,
    ref: str,
    call_ids: Sequence[str],
    at: datetime.datetime,
    counts: dict[str, int],
) -> SubjectErasedEvent:
    return SubjectErasedEvent(
        id=f"{request_id}:0",
        call_id=request_id,
        tenant_id=tenant_id,
        seq=0,
        at=iso(at),
        subject=ref,
        call_ids=list(call_ids),
        erased=dict(counts),
    )


def erased_outbox_row(event: SubjectErasedEvent, node: str) -> OutboxRow:
    """The event's outbox row, written by `node` (whose relay delivers it)."""
    return OutboxRow(**outbox_columns(event, node))
