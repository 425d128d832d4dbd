"""Agent and number lookups for the call-starting paths (`CallHost.find_agent`,
`CallHost.find_number`), shared by the node and the test host."""

from __future__ import annotations

import functools

from sqlalchemy import select

from agents.catalog import parse_spec
from agents.spec import AgentSpec
from control_api.host import AgentRef, NumberRoute
from control_api.store import agents as agent_rows
from control_api.store import numbers as number_rows
from control_api.store.base import Store
from control_api.store.models import Agent


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> AgentSpec:
    """Stored versions are immutable and were valid when stored: parse each text once."""
    return parse_spec(text, "stored agent")


class Directory:
    """Which agent version a call runs, and who answers a number."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def find_agent(
        self, tenant_id: str, name: str, version: int | None = None
    ) -> AgentRef | None:
        async with self._store.session() as session:
            row = await agent_rows.find_version(session, tenant_id, name, version)
        if row is None:
            return None
        return AgentRef(
            tenant_id=tenant_id,
            name=name,
            version=row.version,
            spec=_parse(row.spec),
            operator=row.operator,
        )

    async def find_number(self, number: str) -> NumberRoute | None:
        async with self._store.session() as session:
            route = await number_rows.route(session, number)
        if route is None:
            return None
        agent = await self.find_agent(route.tenant_id, route.agent)
        if agent is None:
            return None
        return NumberRoute(number=route.number, tenant_id=route.tenant_id, agent=agent)

    async def agent_names(self) -> set[tuple[str, str]]:
        """(tenant, name) of every agent not deleted, across tenants."""
        async with self._store.session() as session:
            rows = await session.execute(
                select(Agent.tenant_id, Agent.name).where(Agent.deleted_at.is_(None))
            )
            return {(tenant, name) for tenant, name in rows.all()}
