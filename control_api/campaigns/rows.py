"""Campaigns in the store (migration `0008_campaigns`): the campaign, its contacts and the
attempts made on them, and the dialler's claim on a contact.

Several nodes share one database. A node dials a contact only after `claim` has leased it:
the contacts are chosen with `SELECT ... FOR UPDATE SKIP LOCKED` among those not final and
not leased (or whose lease has expired), so a second node claiming at the same moment skips
the rows the first holds, and after the first commits sees its lease. `finish` records the
attempt's outcome with the campaign's retry rules and ends the lease. A node that dies
mid-call leaves a lease that expires; `recover` then ends its unfinished attempt as failed
(retried per the policy, never redialled at once). Every query names the tenant.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from control_api.campaigns.lifecycle import (
    CampaignState,
    ContactState,
    Disposition,
    record_attempt,
)
from control_api.campaigns.model import CampaignIn, Retry
from control_api.store.base import Base


class CampaignRow(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(
            "state IN ('draft', 'running', 'paused', 'completed', 'cancelled')", name="state"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    """The campaign as created, without its contacts (those are rows of their own)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ContactRow(Base):
    __tablename__ = "campaign_contacts"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(16))
    variables: Mapped[dict[str, str]] = mapped_column(JSON)
    timezone: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer)
    disposition: Mapped[str | None] = mapped_column(String(20))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_eligible_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final: Mapped[bool] = mapped_column(Boolean)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AttemptRow(Base):
    __tablename__ = "campaign_attempts"
    __table_args__ = (UniqueConstraint("contact_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("campaign_contacts.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disposition: Mapped[str | None] = mapped_column(String(20))
    call_id: Mapped[str | None] = mapped_column(String(64))


async def create_campaign(
    session: AsyncSession, tenant_id: str, campaign: CampaignIn, now: datetime
) -> str:
    """Stores a draft campaign and its contacts; returns its id."""
    campaign_id = secrets.token_hex(8)
    body = msgspec.to_builtins(campaign.settings())
    session.add(
        CampaignRow(
            id=campaign_id,
            tenant_id=tenant_id,
            name=campaign.name,
            state=CampaignState.DRAFT.value,
            body=body,
            created_at=now,
        )
    )
    await session.flush()
    session.add_all(
        ContactRow(
            campaign_id=campaign_id,
            tenant_id=tenant_id,
            number=contact.number,
            variables=dict(contact.variables),
            timezone=contact.timezone,
            attempts=0,
            final=False,
        )
        for contact in campaign.contacts
    )
    await session.flush()
    return campaign_id


def _state(row: ContactRow) -> ContactState:
    return ContactState(
        id=row.id,
        number=row.number,
        timezone=row.timezone,
        attempts=row.attempts,
        disposition=Disposition(row.disposition) if row.disposition else None,
        last_attempt_at=_aware(row.last_attempt_at),
        next_eligible_at=_aware(row.next_eligible_at),
        final=row.final,
    )


def _aware(at: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; the store writes UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


async def contact_states(
    session: AsyncSession, tenant_id: str, campaign_id: str, now: datetime
) -> tuple[list[ContactState], frozenset[int]]:
    """The campaign's contacts, and the ids of those a node holds (on a call; or its node
    died, until `recover` ends the lease)."""
    rows = (
        await session.scalars(
            select(ContactRow)
            .where(ContactRow.tenant_id == tenant_id, ContactRow.campaign_id == campaign_id)
            .order_by(ContactRow.id)
        )
    ).all()
    live = frozenset(r.id for r in rows if r.lease_owner is not None)
    return [_state(r) for r in rows], live


async def recent_dials(
    session: AsyncSession, tenant_id: str, campaign_id: str, now: datetime
) -> list[datetime]:
    """When the campaign's attempts of the last minute started (for its calls_per_minute)."""
    started = await session.scalars(
        select(AttemptRow.started_at).where(
            AttemptRow.tenant_id == tenant_id,
            AttemptRow.campaign_id == campaign_id,
            AttemptRow.started_at > now - timedelta(minutes=1),
        )
    )
    return [at for at in (_aware(s) for s in started) if at is not None]


async def claim(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    ids: Sequence[int],
    *,
    node: str,
    now: datetime,
    lease: timedelta,
) -> list[int]:
    """Leases those of `ids` that no node holds, that are not final and whose retry is due,
    and opens an attempt on each; returns the ids leased (the others: another node has them,
    or they ended or were tried again since the caller looked)."""
    free = (
        select(ContactRow)
        .where(
            ContactRow.tenant_id == tenant_id,
            ContactRow.campaign_id == campaign_id,
            ContactRow.id.in_(list(ids)),
            ContactRow.final.is_(False),
            ContactRow.lease_owner.is_(None),
            or_(ContactRow.next_eligible_at.is_(None), ContactRow.next_eligible_at <= now),
        )
        .order_by(ContactRow.id)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.scalars(free)).all()
    for row in rows:
        row.lease_owner = node
        row.lease_expires_at = now + lease
        session.add(
            AttemptRow(
                campaign_id=campaign_id,
                contact_id=row.id,
                tenant_id=tenant_id,
                attempt=row.attempts + 1,
                node=node,
                started_at=now,
            )
        )
    await session.flush()
    return [row.id for row in rows]


async def finish(
    session: AsyncSession,
    tenant_id: str,
    contact_id: int,
    *,
    node: str,
    outcome: Disposition,
    at: datetime,
    retry: Retry,
    call_id: str | None = None,
) -> ContactState | None:
    """Records the outcome of `node`'s attempt on the contact and ends its lease; None when
    `node` no longer holds the lease (it expired and was recovered)."""
    row = await held_by(session, tenant_id, contact_id, node)
    if row is None:
        return None
    return await _end(session, row, outcome, at, retry, call_id)


async def held_by(
    session: AsyncSession, tenant_id: str, contact_id: int, node: str
) -> ContactRow | None:
    """The contact, locked, if `node` holds its lease; else None."""
    return await session.scalar(
        select(ContactRow)
        .where(
            ContactRow.tenant_id == tenant_id,
            ContactRow.id == contact_id,
            ContactRow.lease_owner == node,
        )
        .with_for_update()
    )


async def recover(
    session: AsyncSession, tenant_id: str, campaign_id: str, now: datetime, retry: Retry
) -> list[int]:
    """Ends as failed the attempts whose lease expired (their node died or lost the store):
    the contact is retried per `retry`, after its backoff. Returns the contacts' ids."""
    return [c.id for c in await recover_states(session, tenant_id, campaign_id, now, retry)]


async def recover_states(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    now: datetime,
    retry: Retry,
    *,
    node: str | None = None,
) -> list[ContactState]:
    """`recover`, returning each contact as it is after (its `attempts` numbers the attempt
    ended). `node`: the leases `node` holds, expired or not (that node restarted: its calls
    are gone), instead of the expired ones."""
    held = (
        ContactRow.lease_owner == node
        if node is not None
        else and_(ContactRow.lease_owner.is_not(None), ContactRow.lease_expires_at <= now)
    )
    expired = (
        await session.scalars(
            select(ContactRow)
            .where(ContactRow.tenant_id == tenant_id, ContactRow.campaign_id == campaign_id, held)
            .order_by(ContactRow.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    return [await _end(session, row, Disposition.FAILED, now, retry, None) for row in expired]


async def _end(
    session: AsyncSession,
    row: ContactRow,
    outcome: Disposition,
    at: datetime,
    retry: Retry,
    call_id: str | None,
) -> ContactState:
    after = record_attempt(_state(row), outcome, at, retry)
    await session.execute(
        update(AttemptRow)
        .where(AttemptRow.contact_id == row.id, AttemptRow.attempt == after.attempts)
        .values(ended_at=at, disposition=outcome.value, call_id=call_id)
    )
    row.attempts = after.attempts
    row.disposition = outcome.value
    row.last_attempt_at = at
    row.next_eligible_at = after.next_eligible_at
    row.final = after.final
    row.lease_owner = None
    row.lease_expires_at = None
    await session.flush()
    return after


async def attempts_of(session: AsyncSession, tenant_id: str, contact_id: int) -> int:
    """How many attempts were opened on the contact (finished or not)."""
    count = await session.scalar(
        select(func.count())
        .select_from(AttemptRow)
        .where(AttemptRow.tenant_id == tenant_id, AttemptRow.contact_id == contact_id)
    )
    return int(count or 0)
