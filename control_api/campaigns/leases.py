"""The dialler's other moves on a campaign's contacts in the store (beside `rows.claim`,
`finish` and `recover`): a lease given back without an attempt (`unclaim`: a dial refused for
capacity is paced, not failed), leases extended while their calls go on (`renew`), contacts
ended as do_not_call (`bar`), and the campaigns a node's dialler works on. Every query names
the tenant but `campaigns_in`, which is the dialler's one look across tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.campaigns import rows
from control_api.campaigns.lifecycle import CampaignState, Disposition
from control_api.campaigns.rows import AttemptRow, CampaignRow, ContactRow


async def campaigns_in(session: AsyncSession, states: Sequence[CampaignState]) -> list[CampaignRow]:
    """Every tenant's campaigns in one of `states`, oldest first."""
    found = await session.scalars(
        select(CampaignRow)
        .where(CampaignRow.state.in_([s.value for s in states]))
        .order_by(CampaignRow.created_at, CampaignRow.id)
    )
    return list(found.all())


async def unclaim(session: AsyncSession, tenant_id: str, contact_id: int, *, node: str) -> bool:
    """Gives back `node`'s lease without an attempt (the dial was refused for capacity: it is
    paced, not failed): the open attempt is deleted. False when `node` no longer holds it."""
    row = await rows.held_by(session, tenant_id, contact_id, node)
    if row is None:
        return False
    await session.execute(
        delete(AttemptRow).where(
            AttemptRow.tenant_id == tenant_id,
            AttemptRow.contact_id == contact_id,
            AttemptRow.attempt == row.attempts + 1,
        )
    )
    row.lease_owner = None
    row.lease_expires_at = None
    await session.flush()
    return True


async def renew(
    session: AsyncSession, tenant_id: str, ids: Sequence[int], *, node: str, until: datetime
) -> int:
    """Extends `node`'s leases on the contacts (its calls still going) to `until`; returns
    how many it still held."""
    if not ids:
        return 0
    result = await session.execute(
        update(ContactRow)
        .where(
            ContactRow.tenant_id == tenant_id,
            ContactRow.id.in_(list(ids)),
            ContactRow.lease_owner == node,
        )
        .values(lease_expires_at=until)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def bar(
    session: AsyncSession, tenant_id: str, campaign_id: str, ids: Sequence[int], at: datetime
) -> list[int]:
    """Ends the contacts (not final, not held) as do_not_call without a dial; returns their
    ids."""
    rows = (
        await session.scalars(
            select(ContactRow)
            .where(
                ContactRow.tenant_id == tenant_id,
                ContactRow.campaign_id == campaign_id,
                ContactRow.id.in_(list(ids)),
                ContactRow.final.is_(False),
                ContactRow.lease_owner.is_(None),
            )
            .order_by(ContactRow.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        row.disposition = Disposition.DO_NOT_CALL.value
        row.next_eligible_at = None
        row.final = True
    await session.flush()
    return [row.id for row in rows]


async def contacts_by_id(
    session: AsyncSession, tenant_id: str, ids: Sequence[int]
) -> dict[int, ContactRow]:
    """The tenant's contact rows of `ids` (the number and variables to dial with)."""
    if not ids:
        return {}
    found = await session.scalars(
        select(ContactRow).where(ContactRow.tenant_id == tenant_id, ContactRow.id.in_(list(ids)))
    )
    return {row.id: row for row in found}
