"""Migration `0005_number_ranges` creates `number_ranges` exactly as `control_api.number_ranges`
declares it (SQLite and a real PostgreSQL), deleting a tenant deletes its ranges, and the
downgrade to `0004_secrets` removes the table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, inspect
from sqlalchemy.engine import Connection

from control_api.number_ranges import NumberRange, ranges_of, set_ranges
from control_api.store import Store, open_store
from control_api.store import tenants as tenant_rows
from control_api.store.migrate import current_revision, migrate
from control_api.store.models import Tenant
from tests.control_api.migrations import schema_diffs
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

TABLE = NumberRange.__tablename__


@pytest.fixture(params=["sqlite", "postgres"])
async def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'voicenode.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    store = open_store(url)
    try:
        await migrate(store)
        yield store
    finally:
        await store.close()


async def test_migration_matches_the_table_and_downgrades(migrated: Store) -> None:
    assert await current_revision(migrated) is not None

    def check(connection: Connection) -> None:
        assert TABLE in inspect(connection).get_table_names()
        diffs = schema_diffs(connection, {TABLE})
        assert diffs == [], "control_api.number_ranges and 0005_number_ranges disagree"

    async with migrated.engine.connect() as conn:
        await conn.run_sync(check)

    async with migrated.session() as session:
        await tenant_rows.create_tenant(session, "Ranges", tenant_id="ranges")
        assert await set_ranges(session, "ranges", ["+1555*", "support", "+1555*"]) == [
            "+1555*",
            "support",
        ]
    async with migrated.session() as session:
        assert await ranges_of(session, "ranges") == ["+1555*", "support"]
        await session.execute(delete(Tenant).where(Tenant.id == "ranges"))
    async with migrated.session() as session:
        assert await ranges_of(session, "ranges") == []  # gone with its tenant

    await _downgrade(migrated, "0004_secrets")
    assert await current_revision(migrated) == "0004_secrets"

    def gone(connection: Connection) -> None:
        assert TABLE not in inspect(connection).get_table_names()

    async with migrated.engine.connect() as conn:
        await conn.run_sync(gone)
    await migrate(migrated)  # and back up


async def _downgrade(store: Store, revision: str) -> None:
    from alembic import command

    from control_api.store.migrate import alembic_config

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(run)
