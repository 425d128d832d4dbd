"""A tenant's PII redaction policy (`tenants.pii_redaction`, migration `0007_pii_redaction`):
the kinds of personal data (`agents.pii`) taken out of its transcripts, events, call history and
its agents' LLM context. Not set (null), or an unknown tenant: every kind."""

from __future__ import annotations

from collections.abc import Iterable

from agents.pii import ALL_KINDS, parse_kinds
from control_api.store.base import Store
from control_api.store.models import Tenant


def policy_of(row: Tenant | None) -> frozenset[str]:
    """The kinds a tenant's row redacts (every kind when it set none)."""
    if row is None or row.pii_redaction is None:
        return ALL_KINDS
    return parse_kinds(kind for kind in row.pii_redaction if kind in ALL_KINDS)


async def redaction_kinds(store: Store, tenant_id: str) -> frozenset[str]:
    """The kinds redacted for `tenant_id`'s calls (read when a call starts)."""
    async with store.session() as session:
        return policy_of(await session.get(Tenant, tenant_id))


def set_policy(row: Tenant, kinds: Iterable[str] | None) -> None:
    """Store `kinds` (validated, each once, sorted) as the tenant's policy; None: every kind."""
    row.pii_redaction = None if kinds is None else sorted(parse_kinds(kinds))
