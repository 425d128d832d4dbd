"""Contacts added to a draft campaign in the store (`POST /v1/campaigns/{id}/contacts`, a CSV
file read by `contacts_csv`): under the campaign's row lock, so a concurrent `start` either
runs before (and the upload is refused: the campaign is no longer a draft) or after (and
dials what was added).

A number the campaign already has is refused for that row. A number on the tenant's
do-not-call list is imported ended as `do_not_call` (final, never attempted), which is what
`pacing.plan` makes of it when the dialler reaches it: its row is reported, and it counts in
the campaign's progress as done. A number added to the list later is still never dialled
(`plan` checks the list as it stands at each look).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.campaigns import dnc
from control_api.campaigns.contacts_csv import CsvContact, CsvTooLarge, RowProblem
from control_api.campaigns.lifecycle import CampaignState, Disposition
from control_api.campaigns.model import MAX_CONTACTS
from control_api.campaigns.queries import get_campaign
from control_api.campaigns.rows import ContactRow
from core.errors import Refused


class NotADraft(Refused):
    """Contacts are added only to a draft campaign (409)."""


@dataclass
class Imported:
    imported: int = 0
    do_not_call: list[int] = field(default_factory=list)
    """The lines imported ended as do_not_call."""
    problems: list[RowProblem] = field(default_factory=list)
    """The rows refused here (numbers the campaign already has)."""
    contacts: int = 0
    """The campaign's contacts after the import."""


async def import_contacts(
    session: AsyncSession, tenant_id: str, campaign_id: str, contacts: Sequence[CsvContact]
) -> Imported | None:
    """Adds `contacts` to the tenant's draft campaign; None when it has no such campaign.
    Raises `NotADraft`, or `CsvTooLarge` when the campaign would pass `MAX_CONTACTS`
    (nothing is added then)."""
    row = await get_campaign(session, tenant_id, campaign_id, lock=True)
    if row is None:
        return None
    if row.state != CampaignState.DRAFT.value:
        raise NotADraft(f"contacts are added to a draft campaign only (this one is {row.state})")
    existing = set(
        await session.scalars(
            select(ContactRow.number).where(
                ContactRow.tenant_id == tenant_id, ContactRow.campaign_id == campaign_id
            )
        )
    )
    result = Imported()
    fresh = []
    for item in contacts:
        if item.contact.number in existing:
            result.problems.append(RowProblem(item.line, "the campaign already has this number"))
        else:
            fresh.append(item)
    if len(existing) + len(fresh) > MAX_CONTACTS:
        raise CsvTooLarge(
            f"the campaign would have {len(existing) + len(fresh)} contacts, "
            f"more than {MAX_CONTACTS}"
        )
    listed = await dnc.listed(session, tenant_id, (item.contact.number for item in fresh))
    session.add_all(
        _row(tenant_id, campaign_id, item, item.contact.number in listed) for item in fresh
    )
    await session.flush()
    result.imported = len(fresh)
    result.do_not_call = [item.line for item in fresh if item.contact.number in listed]
    result.contacts = len(existing) + len(fresh)
    return result


def _row(tenant_id: str, campaign_id: str, item: CsvContact, barred: bool) -> ContactRow:
    contact = item.contact
    return ContactRow(
        campaign_id=campaign_id,
        tenant_id=tenant_id,
        number=contact.number,
        variables=dict(contact.variables),
        timezone=contact.timezone,
        attempts=0,
        disposition=Disposition.DO_NOT_CALL.value if barred else None,
        final=barred,
    )
