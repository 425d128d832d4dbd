"""What the control API reads and changes of a campaign in the store (`rows.py`'s tables):
one campaign (locked for a lifecycle move), a tenant's campaigns, the contacts' progress
counts, a page of contacts and their attempts. Every query names the tenant, so another
tenant's campaign is simply not found.

A contact's `status` is derived from its row: `pending` (never dialled, not held), `dialing`
(a node holds its lease: on a call, or its node died until the lease is recovered),
`retrying` (dialled, not final: waiting for its next attempt) and `done` (final).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.campaigns.lifecycle import Action, CampaignState, NoContacts, transition
from control_api.campaigns.rows import AttemptRow, CampaignRow, ContactRow

ContactStatus = Literal["pending", "dialing", "retrying", "done"]
CONTACT_STATUSES: Final[tuple[ContactStatus, ...]] = ("pending", "dialing", "retrying", "done")


def _is(status: ContactStatus) -> ColumnElement[bool]:
    """The SQL condition for contacts of `status`."""
    live = ContactRow.final.is_(False)
    free = ContactRow.lease_owner.is_(None)
    conditions: dict[ContactStatus, ColumnElement[bool]] = {
        "done": ContactRow.final.is_(True),
        "dialing": and_(live, ContactRow.lease_owner.is_not(None)),
        "pending": and_(live, free, ContactRow.attempts == 0),
        "retrying": and_(live, free, ContactRow.attempts > 0),
    }
    return conditions[status]


def status_of(row: ContactRow) -> ContactStatus:
    """The status of one contact row (as `_is` selects it)."""
    if row.final:
        return "done"
    if row.lease_owner is not None:
        return "dialing"
    return "retrying" if row.attempts > 0 else "pending"


async def get_campaign(
    session: AsyncSession, tenant_id: str, campaign_id: str, *, lock: bool = False
) -> CampaignRow | None:
    """The tenant's campaign (None: none of that id, or another tenant's); `lock`: with a row
    lock held to the end of the transaction (PostgreSQL; SQLite serialises writers)."""
    stmt = select(CampaignRow).where(
        CampaignRow.tenant_id == tenant_id, CampaignRow.id == campaign_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def move(
    session: AsyncSession, tenant_id: str, campaign_id: str, action: Action
) -> CampaignRow | None:
    """Applies `action` to the campaign under its row lock; None when it is not the tenant's.
    A move the lifecycle refuses raises `TransitionRefused` (nothing changed); a start of a
    campaign without contacts `NoContacts` (the lock keeps a CSV upload from racing it)."""
    row = await get_campaign(session, tenant_id, campaign_id, lock=True)
    if row is None:
        return None
    after = transition(CampaignState(row.state), action)
    if action is Action.START and await count_contacts(session, tenant_id, campaign_id) == 0:
        raise NoContacts("cannot start a campaign with no contacts: add some first")
    row.state = after.value
    await session.flush()
    return row


async def count_contacts(session: AsyncSession, tenant_id: str, campaign_id: str) -> int:
    """How many contacts the campaign has (ended ones included)."""
    count = await session.scalar(
        select(func.count())
        .select_from(ContactRow)
        .where(ContactRow.tenant_id == tenant_id, ContactRow.campaign_id == campaign_id)
    )
    return int(count or 0)


async def list_campaigns(
    session: AsyncSession,
    tenant_id: str,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> list[CampaignRow]:
    """The tenant's campaigns, newest first (created, then id), after the cursor `before`."""
    stmt = select(CampaignRow).where(CampaignRow.tenant_id == tenant_id)
    if before is not None:
        at, campaign_id = before
        stmt = stmt.where(
            or_(
                CampaignRow.created_at < at,
                and_(CampaignRow.created_at == at, CampaignRow.id < campaign_id),
            )
        )
    stmt = stmt.order_by(CampaignRow.created_at.desc(), CampaignRow.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def progress(
    session: AsyncSession, tenant_id: str, campaign_id: str
) -> tuple[dict[str, int], dict[str, int]]:
    """The campaign's contacts counted by status (every status named, 0 included) and by
    their last attempt's disposition (those dialled)."""
    status = case(*((_is(name), name) for name in CONTACT_STATUSES[:-1]), else_="done").label(
        "status"
    )
    stmt = (
        select(status, ContactRow.disposition, func.count())
        .where(ContactRow.tenant_id == tenant_id, ContactRow.campaign_id == campaign_id)
        .group_by(status, ContactRow.disposition)
    )
    by_status: dict[str, int] = dict.fromkeys(CONTACT_STATUSES, 0)
    by_disposition: dict[str, int] = {}
    for name, disposition, count in (await session.execute(stmt)).all():
        by_status[name] += count
        if disposition is not None:
            by_disposition[disposition] = by_disposition.get(disposition, 0) + count
    return by_status, by_disposition


async def contacts_page(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    *,
    status: ContactStatus | None,
    limit: int,
    after: int | None = None,
) -> list[ContactRow]:
    """Up to `limit` of the campaign's contacts in id order, after the id `after`."""
    stmt = select(ContactRow).where(
        ContactRow.tenant_id == tenant_id, ContactRow.campaign_id == campaign_id
    )
    if status is not None:
        stmt = stmt.where(_is(status))
    if after is not None:
        stmt = stmt.where(ContactRow.id > after)
    stmt = stmt.order_by(ContactRow.id).limit(limit)
    return list((await session.scalars(stmt)).all())


async def attempts_of(
    session: AsyncSession, tenant_id: str, contact_ids: Sequence[int]
) -> dict[int, list[AttemptRow]]:
    """The attempts on each of the contacts, in order."""
    found: dict[int, list[AttemptRow]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return found
    rows = await session.scalars(
        select(AttemptRow)
        .where(AttemptRow.tenant_id == tenant_id, AttemptRow.contact_id.in_(list(contact_ids)))
        .order_by(AttemptRow.contact_id, AttemptRow.attempt)
    )
    for row in rows:
        found[row.contact_id].append(row)
    return found
