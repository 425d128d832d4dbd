"""Embedded defaults: on first start with an empty store, tenant `demo` with the file agents
(the embedded specs plus `agents.dir`) and number `1000` routed to the default agent.

`seed` alone (tests) also adds, on later starts, file agents the demo tenant has never had.
The node's store (`node_store`) then reconciles the files with the store
(`control_api.store.file_agents`): a changed file becomes a new version, a file that fails
validation is refused (and with `agents.strict` stops the start). On PostgreSQL seeding and
the reconcile hold the schema lock, so nodes starting together do it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from sqlalchemy import func, select, text

from agents.catalog import SpecError, parse_spec
from config import ConfigError
from config.schema import Settings
from control_api.agent_files import AgentFile, FileRefused, read_files
from control_api.store import agents as agent_rows
from control_api.store import numbers as number_rows
from control_api.store.base import Store, default_url, open_store
from control_api.store.crypto import SecretsKeyError, load_box
from control_api.store.file_agents import reconcile
from control_api.store.migrate import LOCK_ID, migrate
from control_api.store.models import Tenant
from control_api.store.secrets import seal_legacy
from control_api.store.tenants import create_tenant

log = logging.getLogger(__name__)

DEMO_TENANT: Final = "demo"
DEMO_NUMBER: Final = "1000"


def file_specs(extra_dir: str | None = None) -> dict[str, str]:
    """Agent spec texts by name: `config/agents/*.toml`, then `extra_dir/*.toml` (which wins).
    Each is validated; `SpecError` names the file and field."""
    embedded = files("config") / "agents"
    sources: list[Path | Traversable] = sorted(
        (f for f in embedded.iterdir() if f.name.endswith(".toml") and f.is_file()),
        key=lambda f: f.name,
    )
    if extra_dir:
        folder = Path(extra_dir)
        if not folder.is_dir():
            raise SpecError(f"{folder}: agent spec folder does not exist")
        sources.extend(sorted(folder.glob("*.toml")))
    out: dict[str, str] = {}
    for source in sources:
        body = source.read_text(encoding="utf-8")
        out[parse_spec(body, str(source)).name] = body
    return out


async def seed(store: Store, specs: dict[str, str], default_agent: str) -> None:
    """Create the embedded defaults in an empty store; add new file agents to `demo`."""
    async with store.session() as session:
        if store.engine.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        if not await session.scalar(select(func.count()).select_from(Tenant)):
            await create_tenant(session, DEMO_TENANT, tenant_id=DEMO_TENANT)
            for name, body in specs.items():
                await agent_rows.create_agent(
                    session, DEMO_TENANT, name, body, "seeded", operator=True
                )
            if default_agent in specs:
                await number_rows.add_number(session, DEMO_TENANT, DEMO_NUMBER, default_agent)
            log.info(
                "store seeded with the embedded defaults",
                extra={"tenant_id": DEMO_TENANT, "agents": sorted(specs)},
            )
            return
        if await session.get(Tenant, DEMO_TENANT) is None:
            return
        known = await agent_rows.agent_names(session, DEMO_TENANT)
        for name in sorted(set(specs) - known):
            await agent_rows.create_agent(
                session, DEMO_TENANT, name, specs[name], "seeded", operator=True
            )
            log.info("file agent added", extra={"tenant_id": DEMO_TENANT, "agent": name})


def agent_files(
    settings: Settings, extra_dir: str | None = None
) -> tuple[list[AgentFile], list[FileRefused]]:
    """The agent files (`extra_dir` or `agents.dir`); with `agents.strict`, any refused file is
    a `ConfigError` naming it. A missing `agents.dir` is a `ConfigError`."""
    found, refused = read_files(extra_dir or settings.agents.dir or None)
    if refused and settings.agents.strict:
        raise ConfigError(f"agents.strict: {refused[0].error}")
    return found, refused


@asynccontextmanager
async def plain_store(settings: Settings) -> AsyncIterator[Store]:
    """The configured store, opened and migrated (not seeded); closed on exit."""
    url = settings.store.url or default_url(settings.node.data_dir)
    if not settings.store.url:
        await asyncio.to_thread(Path(settings.node.data_dir).mkdir, parents=True, exist_ok=True)
    try:
        box = await asyncio.to_thread(load_box, settings)
    except (SecretsKeyError, OSError) as exc:
        raise ConfigError(f"store.secrets_key: {exc}") from None
    store = open_store(url, box)
    try:
        await migrate(store)
        await seal_legacy(store)
        yield store
    finally:
        await store.close()


async def seed_and_reconcile(
    store: Store, settings: Settings, found: list[AgentFile], refused: list[FileRefused]
) -> None:
    """The embedded defaults into an empty store, then the agent files reconciled."""
    await seed(store, {f.name: f.text for f in found}, settings.agents.default)
    await reconcile(store, found, refused, settings.agents.file_conflict)


@asynccontextmanager
async def node_store(settings: Settings) -> AsyncIterator[Store]:
    """The node's store, opened, migrated, seeded and reconciled with the agent files:
    `store.url`, or by default a SQLite file under `node.data_dir` (created if missing), with
    the node's secrets key (`load_box`). Closed on exit."""
    found, refused = await asyncio.to_thread(agent_files, settings)
    async with plain_store(settings) as store:
        await seed_and_reconcile(store, settings, found, refused)
        yield store
