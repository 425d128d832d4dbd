"""Reconciling the agent files with the store: what the tenant holds (`stored_agents`), the
plan (`control_api.agent_files.diff`) applied in one transaction, and one log line per agent
that changed, was refused, kept its API version or lost its file.

File agents belong to the `demo` tenant (where `seed` puts them). Every version a file makes
is noted "file" and is the operator's (`operator=True`). Live calls are pinned to the version
they started with (`AgentRef.pinned`); a new version is what the next call gets.
"""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.agent_files import (
    FILE_NOTES,
    AgentFile,
    ConflictPolicy,
    FileRefused,
    Plan,
    Step,
    StoredAgent,
    diff,
)
from control_api.store import agents as agent_rows
from control_api.store.base import Store
from control_api.store.migrate import LOCK_ID
from control_api.store.models import Agent, AgentVersion, Tenant

log = logging.getLogger(__name__)

FILE_TENANT: Final = "demo"
FILE_NOTE: Final = "file"


async def stored_agents(session: AsyncSession, tenant_id: str) -> list[StoredAgent]:
    """Every agent of the tenant (deleted ones too), with its last version from a file."""
    out: list[StoredAgent] = []
    agents = (await session.scalars(select(Agent).where(Agent.tenant_id == tenant_id))).all()
    for agent in agents:
        versions = (
            await session.scalars(
                select(AgentVersion)
                .where(AgentVersion.agent_id == agent.id)
                .order_by(AgentVersion.version.desc())
            )
        ).all()
        current = next((v for v in versions if v.version == agent.version), None)
        from_file = next((v for v in versions if v.note in FILE_NOTES), None)
        if current is None:
            continue
        out.append(
            StoredAgent(
                name=agent.name,
                version=agent.version,
                spec=current.spec,
                deleted=agent.deleted_at is not None,
                file_version=None if from_file is None else from_file.version,
                file_spec=None if from_file is None else from_file.spec,
            )
        )
    return out


async def _write(session: AsyncSession, step: Step) -> int:
    """Append the file's version; the new version number."""
    if step.action == "create" or step.version is None:
        _, row = await agent_rows.create_agent(
            session, FILE_TENANT, step.agent, step.text, FILE_NOTE, operator=True
        )
        return row.version
    agent = await session.scalar(
        select(Agent)
        .where(Agent.tenant_id == FILE_TENANT, Agent.name == step.agent)
        .with_for_update()
    )
    if agent is None or agent.deleted_at is not None:  # deleted: revive it
        _, row = await agent_rows.create_agent(
            session, FILE_TENANT, step.agent, step.text, FILE_NOTE, operator=True
        )
        return row.version
    # the store's own append (history only grows; a concurrent change is a Conflict)
    row = await agent_rows._append(session, agent, step.text, FILE_NOTE, operator=True)
    return row.version


async def reconcile(
    store: Store,
    agent_files: list[AgentFile],
    refused: list[FileRefused],
    policy: ConflictPolicy = "file-wins",
    *,
    apply: bool = True,
) -> Plan:
    """Plan (and with `apply`, carry out and log) the reconcile for the file tenant. A store
    without it (tenants made, `demo` not among them) has nothing to reconcile."""
    async with store.session() as session:
        if apply and store.engine.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        if await session.get(Tenant, FILE_TENANT) is None:
            empty = not await session.scalar(select(func.count()).select_from(Tenant))
            # an empty store is seeded with every file agent: that is what a preview shows
            return diff(agent_files, refused, [], policy) if empty and not apply else Plan()
        plan = diff(agent_files, refused, await stored_agents(session, FILE_TENANT), policy)
        if not apply:
            return plan
        written = {s.agent: await _write(session, s) for s in plan.writes}
    for step in plan.steps:
        log_step(step, written.get(step.agent))
    return plan


def log_step(step: Step, new_version: int | None) -> None:
    """The one log line for a step (nothing for an unchanged agent)."""
    base = {"tenant_id": FILE_TENANT, "agent": step.agent, "path": step.path}
    match step.action:
        case "create":
            log.info("agent file: agent added", extra={**base, "new_version": new_version})
        case "update":
            fields = list(step.fields)
            extra = {**base, "old_version": step.version, "new_version": new_version}
            log.info("agent file changed: new version", extra={**extra, "fields": fields})
            if step.overwrites is not None:
                log.warning(
                    "agent file overrides changes made through the API",
                    extra={**extra, "overwritten_fields": list(step.overwritten_fields)},
                )
        case "kept-api":
            log.warning(
                "agent file changed but the API version is kept (agents.file_conflict)",
                extra={**base, "version": step.version, "fields": list(step.fields)},
            )
        case "refused":
            log.error(
                "agent file refused: the agent keeps its last good version",
                extra={**base, "version": step.version, "error": step.error},
            )
        case "removed":
            log.info(
                "agent file removed: the agent is left as it is",
                extra={**base, "version": step.version},
            )
        case "unchanged":
            pass
