"""Tenant secrets (sealed at rest with the store's `SecretBox`) and the sealing of webhook
secrets. Values are opened only to be used (an LLM API key sent to the agent's endpoint, a
webhook signature); they are never returned by the API and never logged."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agents.llm_access import LlmAccess
from agents.mcp_spec import secret_names
from agents.spec import AgentSpec
from control_api.store.base import Store
from control_api.store.crypto import (
    SealError,
    SecretBox,
    is_sealed,
    tenant_secret_context,
    webhook_context,
)
from control_api.store.models import TenantSecret, utcnow
from core.errors import StoreError

log = logging.getLogger(__name__)


class SecretsUnavailable(StoreError, RuntimeError):
    """The store has no key to seal secrets with."""


def box_of(store: Store) -> SecretBox:
    if store.box is None:
        raise SecretsUnavailable("this node has no secrets key (store.secrets_key)")
    return store.box


async def put_secret(
    session: AsyncSession, box: SecretBox, tenant_id: str, name: str, value: str
) -> tuple[TenantSecret, bool]:
    """Store (or replace) the tenant's secret `name`; returns the row and whether it is new."""
    sealed = box.seal(value, tenant_secret_context(tenant_id, name))
    row = await session.get(TenantSecret, (tenant_id, name))
    now = utcnow()
    if row is None:
        row = TenantSecret(
            tenant_id=tenant_id, name=name, value=sealed, created_at=now, updated_at=now
        )
        session.add(row)
        await session.flush()
        return row, True
    row.value, row.updated_at = sealed, now
    return row, False


async def list_secrets(session: AsyncSession, tenant_id: str) -> Sequence[TenantSecret]:
    query = select(TenantSecret).where(TenantSecret.tenant_id == tenant_id)
    return (await session.scalars(query.order_by(TenantSecret.name))).all()


async def has_secret(session: AsyncSession, tenant_id: str, name: str) -> bool:
    return await session.get(TenantSecret, (tenant_id, name)) is not None


async def delete_secret(session: AsyncSession, tenant_id: str, name: str) -> bool:
    row = await session.get(TenantSecret, (tenant_id, name))
    if row is None:
        return False
    await session.delete(row)
    return True


async def read_secrets(store: Store, tenant_id: str, names: Iterable[str]) -> dict[str, str]:
    """The opened values of the tenant's secrets among `names` (missing or unopenable ones
    are left out and logged by name)."""
    wanted = sorted({n for n in names if n})
    if not wanted:
        return {}
    async with store.session() as session:
        rows = (
            await session.scalars(
                select(TenantSecret).where(
                    TenantSecret.tenant_id == tenant_id, TenantSecret.name.in_(wanted)
                )
            )
        ).all()
    out: dict[str, str] = {}
    for row in rows:
        context = tenant_secret_context(tenant_id, row.name)
        try:
            out[row.name] = box_of(store).open(row.value, context)
        except (SealError, SecretsUnavailable) as exc:
            log.error(
                "tenant secret cannot be opened",
                extra={"tenant_id": tenant_id, "secret": row.name, "error": type(exc).__name__},
            )
    for name in wanted:
        if name not in out and name not in {r.name for r in rows}:
            log.warning("tenant secret not found", extra={"tenant_id": tenant_id, "secret": name})
    return out


def seal_webhook_secret(box: SecretBox, webhook_id: str, secret: str) -> str:
    return box.seal(secret, webhook_context(webhook_id))


def open_webhook_secret(box: SecretBox | None, webhook_id: str, stored: str) -> str:
    """The signing secret of a webhook row (legacy plaintext rows are returned as they are
    until `seal_legacy` seals them). Raises `SealError` / `SecretsUnavailable`."""
    if not is_sealed(stored):
        return stored
    if box is None:
        raise SecretsUnavailable("this node has no secrets key (store.secrets_key)")
    return box.open(stored, webhook_context(webhook_id))


async def seal_legacy(store: Store) -> int:
    """Seal webhook secrets stored in plaintext before migration 0004; returns how many."""
    from control_api.analytics.tables import WebhookRow

    box = box_of(store)
    count = 0
    async with store.session() as session:
        for row in (await session.scalars(select(WebhookRow))).all():
            if not is_sealed(row.secret):
                row.secret = seal_webhook_secret(box, row.id, row.secret)
                count += 1
    if count:
        log.info("webhook secrets sealed at rest", extra={"count": count})
    return count


async def llm_access_for(
    store: Store,
    tenant_id: str,
    spec: AgentSpec,
    *,
    operator_agent: bool,
    env: Mapping[str, str],
    url_allowlist: Sequence[str],
) -> LlmAccess:
    """The model key and guard for a call of `spec` (see `LlmAccess.for_agent`): the tenant
    secret it names, or — the operator's own agents only — the environment variable; and the
    secrets its MCP servers' headers name."""
    llm = spec.llm
    names = [llm.api_key_secret] if llm is not None and llm.api_key_secret else []
    names += secret_names(spec.mcp)  # its MCP servers' headers
    secrets = await read_secrets(store, tenant_id, names)
    return LlmAccess.for_agent(
        llm,
        operator_agent=operator_agent,
        secrets=secrets,
        env=env if operator_agent else {},
        url_allowlist=url_allowlist,
    )
