"""The do-not-call list in the store (`control_api.campaigns.dnc`, migration `0009_dnc`) on
SQLite and a real PostgreSQL: the table matches the migration, which upgrades a store at
`0008_campaigns` with its campaigns in place and downgrades again; numbers are added once,
paged, checked and removed per tenant; `normalise` takes what people type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from control_api.campaigns import dnc
from control_api.campaigns.rows import CampaignRow
from control_api.store import Store, open_store
from control_api.store import tenants as tenant_rows
from control_api.store.migrate import alembic_config, current_revision, migrate
from tests.control_api.migrations import schema_diffs
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

NOW = datetime(2027, 6, 7, 14, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'voicenode.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    opened = open_store(url)
    await migrate(opened)
    async with opened.session() as session:
        await tenant_rows.create_tenant(session, "T", tenant_id="t")
        await tenant_rows.create_tenant(session, "U", tenant_id="u")
    try:
        yield opened
    finally:
        await opened.close()


def _run(revision: str, *, down: bool = False) -> Any:
    def step(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    return step


def _matches(connection: Connection) -> None:
    assert "dnc_numbers" in inspect(connection).get_table_names()
    diffs = schema_diffs(connection, {"dnc_numbers"})
    assert diffs == [], "control_api.campaigns.dnc and 0009_dnc disagree"


async def test_0009_upgrades_a_store_at_0008_and_downgrades(url: str) -> None:
    store = open_store(url)
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(_run("0008_campaigns"))
        async with store.session() as session:
            await tenant_rows.create_tenant(session, "T", tenant_id="t")
            session.add(
                CampaignRow(
                    id="c1", tenant_id="t", name="c", state="draft", body={}, created_at=NOW
                )
            )
        await migrate(store, "0009_dnc")
        assert await current_revision(store) == "0009_dnc"
        async with store.engine.connect() as conn:
            await conn.run_sync(_matches)
        async with store.session() as session:
            await dnc.add(session, "t", [("+14155550100", "asked")], NOW)
            assert await session.scalar(select(CampaignRow.id)) == "c1"  # kept
        async with store.engine.begin() as conn:
            await conn.run_sync(_run("0008_campaigns", down=True))
        assert await current_revision(store) == "0008_campaigns"
        async with store.engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "dnc_numbers" not in names and "campaigns" in names
    finally:
        await store.close()


async def test_numbers_are_listed_once_per_tenant(store: Store) -> None:
    async with store.session() as session:
        new = await dnc.add(session, "t", [("+14155550100", "asked"), ("+442071234567", None)], NOW)
        assert new == [True, True]
    async with store.session() as session:
        again = await dnc.add(
            session, "t", [("+14155550100", "again"), ("+14155550101", None)], NOW
        )
        assert again == [False, True]
        await dnc.add(session, "u", [("+15550000000", None)], NOW)
    async with store.session() as session:
        assert await dnc.dnc_numbers(session, "t") == {
            "+14155550100",
            "+14155550101",
            "+442071234567",
        }
        assert await dnc.dnc_numbers(session, "u") == {"+15550000000"}
        row = await dnc.get(session, "t", "+14155550100")
        assert row is not None and row.reason == "asked"  # the first add's row stays
        assert await dnc.get(session, "u", "+14155550100") is None
        first = await dnc.page(session, "t", limit=2, after=None)
        assert [r.number for r in first] == ["+14155550100", "+14155550101"]
        rest = await dnc.page(session, "t", limit=2, after=first[-1].number)
        assert [r.number for r in rest] == ["+442071234567"]
        assert await dnc.listed(session, "t", ["+15550000000", "+442071234567"]) == {
            "+442071234567"
        }
    async with store.session() as session:
        assert not await dnc.remove(session, "u", "+14155550100")  # not u's to remove
        assert await dnc.remove(session, "t", "+14155550100")
        assert not await dnc.remove(session, "t", "+14155550100")
    async with store.session() as session:
        assert "+14155550100" not in await dnc.dnc_numbers(session, "t")


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("+1 (415) 555-0100", "+14155550100"),
        ("0044 20 7123 4567", "+442071234567"),
        ("+44.20.7123.4567", "+442071234567"),
    ],
)
def test_normalise_takes_what_people_type(text: str, e164: str) -> None:
    assert dnc.normalise(text) == e164


@pytest.mark.parametrize(
    "text", ["4155550100", "+0123", "+1415555010012345", "+1 415 CALL NOW", "", "+"]
)
def test_normalise_refuses_without_repeating_the_text(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        dnc.normalise(text)
    assert len(text) < 3 or text not in str(caught.value)
