"""Numbers: a DID or SIP user routed to one of a tenant's agents. A number is unique across the
fleet (the primary key), so one INVITE always reaches one tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.store.errors import Conflict, NotFound
from control_api.store.models import Agent, Number, utcnow


async def list_numbers(session: AsyncSession, tenant_id: str) -> Sequence[Number]:
    query = select(Number).where(Number.tenant_id == tenant_id).order_by(Number.number)
    return (await session.scalars(query)).all()


async def add_number(session: AsyncSession, tenant_id: str, number: str, agent: str) -> Number:
    """Route `number` to the tenant's `agent`; `NotFound` for an unknown agent, `Conflict` when
    the number is taken (by any tenant: the message does not say which)."""
    known = await session.scalar(
        select(Agent.id).where(
            Agent.tenant_id == tenant_id, Agent.name == agent, Agent.deleted_at.is_(None)
        )
    )
    if known is None:
        raise NotFound(f"agent: no agent {agent!r}")
    if await session.get(Number, number) is not None:
        raise Conflict(f"number: {number!r} is already in use")
    row = Number(number=number, tenant_id=tenant_id, agent=agent, created_at=utcnow())
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"number: {number!r} is already in use") from exc
    return row


async def delete_number(session: AsyncSession, tenant_id: str, number: str) -> bool:
    row = await session.scalar(
        select(Number).where(Number.tenant_id == tenant_id, Number.number == number)
    )
    if row is None:
        return False
    await session.delete(row)
    return True


async def route(session: AsyncSession, number: str) -> Number | None:
    """Which tenant and agent answer `number` (fleet-wide lookup, for inbound calls)."""
    return await session.get(Number, number)
