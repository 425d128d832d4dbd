"""Agents of a tenant, versioned: every create, update or rollback appends an immutable
`AgentVersion` (spec TOML text) and moves the agent's `version` to it. Rollback copies the old
spec into a new version, so history only grows and version numbers only go up. Deleting marks
the agent deleted and keeps its versions (a live call pinned to one goes on); creating an agent
of a deleted name revives it with the next version number.

Texts are validated by the caller (`agents.catalog.parse_spec`) before they get here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_api.store.errors import Conflict, NotFound
from control_api.store.models import Agent, AgentVersion, Number, utcnow

Current = tuple[Agent, AgentVersion]
"""An agent and its current version."""


async def _agent(
    session: AsyncSession, tenant_id: str, name: str, *, lock: bool = False
) -> Agent | None:
    query = select(Agent).where(Agent.tenant_id == tenant_id, Agent.name == name)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def _version(session: AsyncSession, agent: Agent, version: int) -> AgentVersion | None:
    return await session.scalar(
        select(AgentVersion).where(
            AgentVersion.agent_id == agent.id, AgentVersion.version == version
        )
    )


async def _append(
    session: AsyncSession, agent: Agent, spec: str, note: str, operator: bool = False
) -> AgentVersion:
    now = utcnow()
    row = AgentVersion(
        agent_id=agent.id,
        version=agent.version + 1,
        spec=spec,
        created_at=now,
        note=note,
        operator=operator,
    )
    agent.version = row.version
    agent.updated_at = now
    agent.deleted_at = None
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"agent {agent.name!r} was changed at the same time; retry") from exc
    return row


async def list_agents(session: AsyncSession, tenant_id: str) -> list[Current]:
    query = (
        select(Agent, AgentVersion)
        .join(
            AgentVersion,
            (AgentVersion.agent_id == Agent.id) & (AgentVersion.version == Agent.version),
        )
        .where(Agent.tenant_id == tenant_id, Agent.deleted_at.is_(None))
        .order_by(Agent.name)
    )
    return [(a, v) for a, v in (await session.execute(query)).all()]


async def get_agent(session: AsyncSession, tenant_id: str, name: str) -> Current | None:
    agent = await _agent(session, tenant_id, name)
    if agent is None or agent.deleted_at is not None:
        return None
    version = await _version(session, agent, agent.version)
    return None if version is None else (agent, version)


async def create_agent(
    session: AsyncSession,
    tenant_id: str,
    name: str,
    spec: str,
    note: str = "created",
    *,
    operator: bool = False,
) -> Current:
    """A new agent at version 1 (or a deleted one revived); `Conflict` if the name is in use.
    `operator`: the spec is the operator's own (a file agent being seeded)."""
    agent = await _agent(session, tenant_id, name, lock=True)
    if agent is not None and agent.deleted_at is None:
        raise Conflict(f"name: agent {name!r} already exists")
    if agent is None:
        now = utcnow()
        agent = Agent(tenant_id=tenant_id, name=name, version=0, created_at=now, updated_at=now)
        session.add(agent)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"name: agent {name!r} already exists") from exc
    return agent, await _append(session, agent, spec, note, operator)


async def update_agent(
    session: AsyncSession, tenant_id: str, name: str, spec: str, note: str = "updated"
) -> Current | None:
    """Append a version with `spec`; None when the tenant has no such agent."""
    agent = await _agent(session, tenant_id, name, lock=True)
    if agent is None or agent.deleted_at is not None:
        return None
    return agent, await _append(session, agent, spec, note)


async def rollback_agent(
    session: AsyncSession, tenant_id: str, name: str, version: int
) -> Current | None:
    """Append a version equal to `version`; None when the tenant has no such agent,
    `NotFound` when the agent has no such version."""
    agent = await _agent(session, tenant_id, name, lock=True)
    if agent is None or agent.deleted_at is not None:
        return None
    old = await _version(session, agent, version)
    if old is None:
        raise NotFound(f"version: agent {name!r} has no version {version}")
    return agent, await _append(session, agent, old.spec, f"rollback to {version}", old.operator)


async def delete_agent(session: AsyncSession, tenant_id: str, name: str) -> bool:
    """Mark the agent deleted; `Conflict` while numbers route to it."""
    agent = await _agent(session, tenant_id, name, lock=True)
    if agent is None or agent.deleted_at is not None:
        return False
    numbers = (
        await session.scalars(
            select(Number.number)
            .where(Number.tenant_id == tenant_id, Number.agent == name)
            .order_by(Number.number)
        )
    ).all()
    if numbers:
        raise Conflict(
            f"agent {name!r} still answers number(s) {', '.join(numbers[:5])}; delete them first"
        )
    agent.deleted_at = utcnow()
    return True


async def list_versions(
    session: AsyncSession, tenant_id: str, name: str
) -> Sequence[AgentVersion] | None:
    agent = await _agent(session, tenant_id, name)
    if agent is None or agent.deleted_at is not None:
        return None
    query = (
        select(AgentVersion)
        .where(AgentVersion.agent_id == agent.id)
        .order_by(AgentVersion.version.desc())
    )
    return (await session.scalars(query)).all()


async def find_version(
    session: AsyncSession, tenant_id: str, name: str, version: int | None = None
) -> AgentVersion | None:
    """The agent's current version, or the given one — which a live call may still be pinned
    to after the agent was updated or deleted."""
    agent = await _agent(session, tenant_id, name)
    if agent is None or (version is None and agent.deleted_at is not None):
        return None
    return await _version(session, agent, agent.version if version is None else version)


async def agent_names(session: AsyncSession, tenant_id: str) -> set[str]:
    """Every agent name the tenant has used, deleted ones included."""
    return set(
        (await session.scalars(select(Agent.name).where(Agent.tenant_id == tenant_id))).all()
    )
