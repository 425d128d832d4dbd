"""A tenant's do-not-call list in the store (migration `0009_dnc`): one row per tenant and
E.164 number, with when it was added and an optional reason.

The dialler reads the whole list as a frozenset (`dnc_numbers`) for `pacing.plan`, which ends a
listed contact as do_not_call instead of dialling it; the control API (`control_api.dnc_api`)
adds, lists, checks and removes numbers; `mark_contacts` ends a new campaign's listed contacts
as do_not_call at once, as the dialler would. `normalise` turns what a person typed into the E.164
form the list and the campaign contacts share. Every query names the tenant. The numbers are
personal data: nothing here logs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import DateTime, ForeignKey, String, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from control_api.campaigns.lifecycle import Disposition
from control_api.campaigns.rows import ContactRow
from control_api.store.base import Base

MAX_REASON: Final = 256
_SEPARATORS: Final = re.compile(r"[\s().-]")
_E164: Final = re.compile(r"^\+[1-9][0-9]{1,14}$")


class DncRow(Base):
    __tablename__ = "dnc_numbers"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(MAX_REASON))


def normalise(text: str) -> str:
    """`text` as an E.164 number (`+` and 2 to 15 digits, the first not 0): spaces, dots,
    dashes and parentheses are dropped, and a leading international `00` becomes `+`. Raises
    `ValueError` (whose message never repeats the text) on anything else: a national number
    without its country code is refused, not guessed."""
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _E164.match(compact):
        raise ValueError("not an E.164 number: + (or 00), country code and digits, 2 to 15")
    return compact


async def dnc_numbers(session: AsyncSession, tenant_id: str) -> frozenset[str]:
    """Every number on the tenant's do-not-call list (E.164)."""
    found = await session.scalars(select(DncRow.number).where(DncRow.tenant_id == tenant_id))
    return frozenset(found)


async def listed(session: AsyncSession, tenant_id: str, numbers: Iterable[str]) -> frozenset[str]:
    """Those of `numbers` (E.164) that are on the tenant's list."""
    wanted = sorted(set(numbers))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        chunk = wanted[start : start + 500]
        found.update(
            await session.scalars(
                select(DncRow.number).where(DncRow.tenant_id == tenant_id, DncRow.number.in_(chunk))
            )
        )
    return frozenset(found)


async def add(
    session: AsyncSession,
    tenant_id: str,
    entries: Sequence[tuple[str, str | None]],
    now: datetime,
) -> list[bool]:
    """Adds (number, reason) pairs (numbers E.164); a number already listed keeps its row
    (also when another request adds it at the same moment: `ON CONFLICT DO NOTHING`).
    Returns, per entry, whether it was new (a number given twice is new the first time)."""
    unique = list({number: reason for number, reason in reversed(entries)}.items())[::-1]
    added: set[str] = set()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        values = [
            {"tenant_id": tenant_id, "number": number, "added_at": now, "reason": reason}
            for number, reason in chunk
        ]
        stmt = (
            insert(DncRow)
            .values(values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "number"])
            .returning(DncRow.number)
        )
        added.update((await session.scalars(stmt)).all())
    first: dict[str, int] = {}
    return [
        number in added and first.setdefault(number, index) == index
        for index, (number, _) in enumerate(entries)
    ]


async def get(session: AsyncSession, tenant_id: str, number: str) -> DncRow | None:
    return await session.get(DncRow, (tenant_id, number))


async def page(
    session: AsyncSession, tenant_id: str, *, limit: int, after: str | None
) -> list[DncRow]:
    """Up to `limit` of the tenant's numbers in number order, those after `after`."""
    query = select(DncRow).where(DncRow.tenant_id == tenant_id)
    if after is not None:
        query = query.where(DncRow.number > after)
    return list((await session.scalars(query.order_by(DncRow.number).limit(limit))).all())


async def remove(session: AsyncSession, tenant_id: str, number: str) -> bool:
    """Takes the number off the tenant's list; False if it was not on it."""
    result = await session.execute(
        delete(DncRow).where(DncRow.tenant_id == tenant_id, DncRow.number == number)
    )
    return bool(getattr(result, "rowcount", 0))


async def mark_contacts(session: AsyncSession, tenant_id: str, campaign_id: str) -> int:
    """Ends as do_not_call, never dialled, the campaign's contacts that are on the tenant's
    list and were never attempted (what `pacing.plan` would do when it reached them); returns
    how many. Those on a call or already attempted are left to the dialler."""
    listed_numbers = select(DncRow.number).where(DncRow.tenant_id == tenant_id)
    result = await session.execute(
        update(ContactRow)
        .where(
            ContactRow.tenant_id == tenant_id,
            ContactRow.campaign_id == campaign_id,
            ContactRow.final.is_(False),
            ContactRow.attempts == 0,
            ContactRow.lease_owner.is_(None),
            ContactRow.number.in_(listed_numbers),
        )
        .values(disposition=Disposition.DO_NOT_CALL.value, final=True, next_eligible_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
