"""Which numbers a tenant may claim itself: ranges the platform admin assigns.

A tenant's `admin` key may route a number (`POST /v1/numbers`) only when it falls within one of
its tenant's ranges; the platform admin key may route any number for any tenant. A range is
either one number (`+15551230000`, `support`) or a prefix block ending in `*` (`+1555123*`: every
number that starts with `+1555123`). No ranges (the default): the tenant claims nothing itself.

The table `number_ranges` comes from migration `0005_number_ranges`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Final

from msgspec import Meta
from sqlalchemy import DateTime, ForeignKey, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from control_api.store import Base
from control_api.store.models import Number, utcnow

MAX_RANGES: Final = 100
NumberRangeText = Annotated[str, Meta(pattern=r"^[A-Za-z0-9+._~-]{1,64}\*?$")]
"""One number, or a prefix followed by `*`."""


class NumberRange(Base):
    """One range of numbers a tenant may route itself."""

    __tablename__ = "number_ranges"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    pattern: Mapped[str] = mapped_column(String(65), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def within(number: str, patterns: Iterable[str]) -> bool:
    """True when `number` is one of `patterns` or starts with a `prefix*` one."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if number.startswith(pattern[:-1]):
                return True
        elif number == pattern:
            return True
    return False


async def ranges_of(session: AsyncSession, tenant_id: str) -> list[str]:
    query = (
        select(NumberRange.pattern)
        .where(NumberRange.tenant_id == tenant_id)
        .order_by(NumberRange.pattern)
    )
    return list((await session.scalars(query)).all())


async def set_ranges(session: AsyncSession, tenant_id: str, patterns: Sequence[str]) -> list[str]:
    """Replace the tenant's ranges (numbers already routed stay routed)."""
    await session.execute(delete(NumberRange).where(NumberRange.tenant_id == tenant_id))
    now = utcnow()
    unique = sorted(set(patterns))
    session.add_all(NumberRange(tenant_id=tenant_id, pattern=p, created_at=now) for p in unique)
    await session.flush()
    return unique


async def may_present(session: AsyncSession, tenant_id: str, caller_id: str) -> bool:
    """Whether the tenant may show `caller_id` on its outbound calls (a campaign's `from`): one
    of its own numbers (routed to it) or within one of its ranges. Anything else would send a
    number the tenant does not hold out through the operator's trunk."""
    owned = await session.scalar(
        select(Number.number).where(Number.tenant_id == tenant_id, Number.number == caller_id)
    )
    return owned is not None or within(caller_id, await ranges_of(session, tenant_id))
