"""The migrations (`0002_calls`, then `0003_replay`) create the analytics tables exactly as
`analytics.tables` declares them (SQLite and a real PostgreSQL), and the recorder writes into
the migrated schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from control_api.analytics import open_analytics
from control_api.analytics.tables import CallRow, OutboxRow
from control_api.store import Store, open_store
from control_api.store.migrate import current_revision, migrate
from tests.control_api.migrations import schema_diffs
from tests.support.analytics import (
    FakeCalls,
    WallClock,
    call_info,
    closing,
    opening,
    settings,
)
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

ANALYTICS_TABLES = {"calls", "outbox", "relay_marks", "dead_letters", "webhooks"}


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


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from control_api.store.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def test_migration_matches_the_tables(migrated: Store) -> None:
    assert await current_revision(migrated) == head_revision()

    def check(connection: Connection) -> None:
        assert ANALYTICS_TABLES <= set(inspect(connection).get_table_names())
        diffs = schema_diffs(connection, ANALYTICS_TABLES)
        assert diffs == [], "analytics.tables and the migrations disagree"

    async with migrated.engine.connect() as conn:
        await conn.run_sync(check)


async def test_recorder_writes_into_the_migrated_schema(migrated: Store) -> None:
    calls = FakeCalls()
    async with open_analytics(settings(), migrated, calls, wall=WallClock()):
        for event in opening() + closing():
            calls.emit(call_info("m1"), event)
    async with migrated.session() as session:
        row = await session.get(CallRow, "m1")
        seqs = (await session.scalars(select(OutboxRow.seq).order_by(OutboxRow.id))).all()
    assert row is not None and row.disposition == "completed"
    assert row.started_at.tzinfo is not None and row.ended_at is not None
    assert list(seqs) == [0, 1, 2, 3, 4]
