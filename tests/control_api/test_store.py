"""The store on SQLite and on a real PostgreSQL (started by the test): migrations, embedded
defaults, tenants and keys, versioned agents, numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from config.schema import AgentsSettings, NodeSettings, Settings
from control_api.store import Store, open_store
from control_api.store import agents as agent_rows
from control_api.store import numbers as number_rows
from control_api.store import tenants as tenant_rows
from control_api.store.directory import Directory
from control_api.store.errors import Conflict, NotFound
from control_api.store.migrate import alembic_config, current_revision, migrate
from control_api.store.seed import file_specs, node_store, seed
from tests.control_api.migrations import schema_diffs
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

CORE_TABLES = {"tenants", "api_keys", "agents", "agent_versions", "numbers", "tenant_secrets"}
RECEPTIONIST = file_specs()["receptionist"]


def spec(name: str) -> str:
    """The receptionist's spec under another name."""
    return RECEPTIONIST.replace('name = "receptionist"', f'name = "{name}"', 1)


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'voicenode.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    store = open_store(url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(empty_store: Store) -> AsyncIterator[Store]:
    await migrate(empty_store)
    await seed(empty_store, file_specs(), "receptionist")
    yield empty_store


async def test_migrations_upgrade_an_empty_database_to_head(empty_store: Store) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await current_revision(empty_store) is None
    await migrate(empty_store)
    assert await current_revision(empty_store) == head
    await migrate(empty_store)  # idempotent

    def check(connection: Connection) -> None:
        assert CORE_TABLES <= set(inspect(connection).get_table_names())
        diffs = schema_diffs(connection, CORE_TABLES)
        assert diffs == [], "the models and the migrations disagree"

    async with empty_store.engine.connect() as conn:
        await conn.run_sync(check)


async def test_seed_creates_the_embedded_defaults_once(store: Store) -> None:
    directory = Directory(store)
    route = await directory.find_number("1000")
    assert route is not None
    assert (route.tenant_id, route.agent.name, route.agent.version) == ("demo", "receptionist", 1)
    assert route.agent.spec.kind == "flow"
    await seed(store, file_specs(), "receptionist")  # a restart changes nothing
    async with store.session() as session:
        assert [t.id for t in await tenant_rows.list_tenants(session)] == ["demo"]
        assert len(await agent_rows.list_agents(session, "demo")) == 1
    # a file agent added later (agents.dir) joins the demo tenant; existing ones stay
    await seed(store, {**file_specs(), "sales": spec("sales")}, "receptionist")
    async with store.session() as session:
        names = [a.name for a, _ in await agent_rows.list_agents(session, "demo")]
        assert names == ["receptionist", "sales"]


async def test_keys_are_stored_hashed_and_revocable(store: Store) -> None:
    async with store.session() as session:
        tenant = await tenant_rows.create_tenant(session, "Acme")
        row, key = await tenant_rows.create_key(session, tenant.id, "operator")
    assert key.startswith("vn_") and len(key) > 40
    assert row.key_hash == tenant_rows.hash_key(key) and key not in row.key_hash
    async with store.session() as session:
        found = await tenant_rows.principal_key(session, key)
        assert found is not None and (found.tenant_id, found.role) == (tenant.id, "operator")
        assert await tenant_rows.principal_key(session, key[:-1] + "x") is None
        assert await tenant_rows.revoke_key(session, "demo", row.id) is None  # other tenant
        assert await tenant_rows.revoke_key(session, tenant.id, row.id) is not None
    async with store.session() as session:
        assert await tenant_rows.principal_key(session, key) is None
    with pytest.raises(Conflict, match="name"):
        async with store.session() as session:
            await tenant_rows.create_tenant(session, "Acme")


async def test_agent_versions_pin_rollback_and_delete(store: Store) -> None:
    directory = Directory(store)
    v1 = await directory.find_agent("demo", "receptionist")
    assert v1 is not None and v1.version == 1
    edited = RECEPTIONIST.replace('greeting = "', 'greeting = "Edited. ', 1)
    async with store.session() as session:
        found = await agent_rows.update_agent(session, "demo", "receptionist", edited)
        assert found is not None and found[1].version == 2
        assert await agent_rows.update_agent(session, "other", "receptionist", edited) is None
    current = await directory.find_agent("demo", "receptionist")
    pinned = await directory.find_agent("demo", "receptionist", 1)
    assert current is not None and current.version == 2
    assert current.spec.greeting.startswith("Edited.")
    assert pinned is not None and pinned.spec == v1.spec
    async with store.session() as session:
        back = await agent_rows.rollback_agent(session, "demo", "receptionist", 1)
        assert back is not None and back[1].version == 3 and back[1].spec == RECEPTIONIST
        with pytest.raises(NotFound, match="version"):
            await agent_rows.rollback_agent(session, "demo", "receptionist", 9)
        versions = await agent_rows.list_versions(session, "demo", "receptionist")
        assert versions is not None
        assert [(v.version, v.note) for v in versions] == [
            (3, "rollback to 1"),
            (2, "updated"),
            (1, "seeded"),
        ]
    # a routed agent cannot be deleted; once its number is gone it can, and pins still resolve
    with pytest.raises(Conflict, match="1000"):
        async with store.session() as session:
            await agent_rows.delete_agent(session, "demo", "receptionist")
    async with store.session() as session:
        assert await number_rows.delete_number(session, "demo", "1000")
        assert await agent_rows.delete_agent(session, "demo", "receptionist")
    assert await directory.find_agent("demo", "receptionist") is None
    assert (await directory.find_agent("demo", "receptionist", 2)) is not None
    async with store.session() as session:  # the name can be used again: the next version
        revived = await agent_rows.create_agent(session, "demo", "receptionist", RECEPTIONIST)
        assert revived[1].version == 4
        with pytest.raises(Conflict, match="already exists"):
            await agent_rows.create_agent(session, "demo", "receptionist", RECEPTIONIST)


async def test_numbers_are_unique_across_tenants(store: Store) -> None:
    async with store.session() as session:
        other = await tenant_rows.create_tenant(session, "Other")
        await agent_rows.create_agent(session, other.id, "front", spec("front"))
    with pytest.raises(Conflict, match="already in use"):
        async with store.session() as session:
            await number_rows.add_number(session, other.id, "1000", "front")
    with pytest.raises(NotFound, match="agent"):
        async with store.session() as session:
            await number_rows.add_number(session, other.id, "2000", "receptionist")
    async with store.session() as session:
        await number_rows.add_number(session, other.id, "+15551230000", "front")
        assert not await number_rows.delete_number(session, "demo", "+15551230000")
    route = await Directory(store).find_number("+15551230000")
    assert route is not None and (route.tenant_id, route.agent.name) == (other.id, "front")
    assert await Directory(store).find_number("9999") is None


async def test_node_store_defaults_to_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    extra = tmp_path / "agents"
    extra.mkdir()
    (extra / "sales.toml").write_text(spec("sales"))
    settings = Settings(
        node=NodeSettings(data_dir=str(tmp_path / "data")),
        agents=AgentsSettings(dir=str(extra)),
    )
    async with node_store(settings) as store:
        assert str(store.engine.url).endswith(f"{tmp_path}/data/voicenode.db")
        assert await Directory(store).find_agent("demo", "sales") is not None
    assert (tmp_path / "data" / "voicenode.db").exists()
