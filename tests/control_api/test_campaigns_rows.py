"""Campaigns in the store (`control_api.campaigns.rows`, migration `0008_campaigns`) on SQLite
and a real PostgreSQL: the tables match the migration, a claim leases a contact to one node,
`finish` applies the retry rules, an expired lease is recovered as a failed attempt, and two
nodes claiming the same contacts at once never both get one (PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from control_api.campaigns import rows
from control_api.campaigns.lifecycle import Disposition
from control_api.campaigns.model import CampaignIn, Contact, Retry, Schedule, Window
from control_api.store import Store, open_store
from control_api.store import tenants as tenant_rows
from control_api.store.migrate import alembic_config, current_revision, migrate
from tests.control_api.migrations import schema_diffs
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

TABLES = ("campaigns", "campaign_contacts", "campaign_attempts")
NOW = datetime(2027, 6, 7, 14, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
RETRY = Retry(max_attempts=2, backoff_minutes=30, on=("busy", "failed"))


def campaign(n: int) -> CampaignIn:
    return CampaignIn(
        name="c",
        agent="a",
        via="sip",
        contacts=tuple(
            Contact(number=f"+1415555{i:04d}", variables={"timezone": "America/Chicago"})
            for i in range(n)
        ),
        schedule=Schedule(
            timezone="America/New_York",
            windows=(Window(days=("mon",), start="09:00", end="17:00"),),
        ),
        max_concurrent=5,
        calls_per_minute=10,
        retry=RETRY,
    )


async def open_migrated(url: str) -> Store:
    store = open_store(url)
    await migrate(store)
    async with store.session() as session:
        await tenant_rows.create_tenant(session, "T", tenant_id="t")
    return store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'voicenode.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    migrated = await open_migrated(url)
    try:
        yield migrated
    finally:
        await migrated.close()


async def test_the_migration_matches_the_tables_and_downgrades(store: Store) -> None:
    def check(connection: Connection) -> None:
        assert set(TABLES) <= set(inspect(connection).get_table_names())
        diffs = schema_diffs(connection, TABLES)
        assert diffs == [], "control_api.campaigns.rows and 0008_campaigns disagree"

    async with store.engine.connect() as conn:
        await conn.run_sync(check)

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0007_pii_redaction")

    def gone(connection: Connection) -> None:
        assert not set(TABLES) & set(inspect(connection).get_table_names())

    async with store.engine.begin() as conn:
        await conn.run_sync(downgrade)
    assert await current_revision(store) == "0007_pii_redaction"
    async with store.engine.connect() as conn:
        await conn.run_sync(gone)
    await migrate(store)  # and back up
    async with store.engine.connect() as conn:
        await conn.run_sync(check)


async def new_campaign(store: Store, n: int) -> tuple[str, list[int]]:
    async with store.session() as session:
        campaign_id = await rows.create_campaign(session, "t", campaign(n), NOW)
        contacts, live = await rows.contact_states(session, "t", campaign_id, NOW)
    assert live == frozenset()
    return campaign_id, [c.id for c in contacts]


async def test_a_claimed_contact_is_live_until_its_attempt_finishes(store: Store) -> None:
    campaign_id, ids = await new_campaign(store, 2)
    async with store.session() as session:
        contacts, _ = await rows.contact_states(session, "t", campaign_id, NOW)
        assert [c.timezone for c in contacts] == ["America/Chicago"] * 2
        assert (
            await rows.claim(session, "t", campaign_id, ids, node="a", now=NOW, lease=LEASE) == ids
        )
    async with store.session() as session:
        assert (
            await rows.claim(session, "t", campaign_id, ids, node="b", now=NOW, lease=LEASE) == []
        )
        assert (await rows.contact_states(session, "t", campaign_id, NOW))[1] == frozenset(ids)
        assert await rows.recent_dials(session, "t", campaign_id, NOW) == [NOW, NOW]
        later = NOW + timedelta(minutes=1)
        assert await rows.recent_dials(session, "t", campaign_id, later) == []
        busy = await rows.finish(
            session, "t", ids[0], node="a", outcome=Disposition.BUSY, at=NOW, retry=RETRY
        )
        assert busy is not None and not busy.final
        assert busy.next_eligible_at == NOW + timedelta(minutes=30)
        lost = await rows.finish(
            session, "t", ids[1], node="b", outcome=Disposition.BUSY, at=NOW, retry=RETRY
        )
        assert lost is None  # b never held it
    async with store.session() as session:
        contacts, live = await rows.contact_states(session, "t", campaign_id, NOW)
        assert live == frozenset({ids[1]})
        assert contacts[0].attempts == 1 and contacts[0].disposition is Disposition.BUSY
        assert contacts[0].next_eligible_at == NOW + timedelta(minutes=30)
        early = await rows.claim(session, "t", campaign_id, ids, node="b", now=NOW, lease=LEASE)
        assert early == []  # in its backoff (another node's plan may be older than the finish)
        due = NOW + timedelta(minutes=30)
        again = await rows.claim(session, "t", campaign_id, ids, node="b", now=due, lease=LEASE)
        assert again == [ids[0]]
        assert await rows.attempts_of(session, "t", ids[0]) == 2


async def test_an_expired_lease_is_recovered_as_a_failed_attempt(store: Store) -> None:
    campaign_id, ids = await new_campaign(store, 1)
    async with store.session() as session:
        await rows.claim(session, "t", campaign_id, ids, node="a", now=NOW, lease=LEASE)
    async with store.session() as session:
        early = NOW + LEASE - timedelta(seconds=1)
        assert await rows.recover(session, "t", campaign_id, early, RETRY) == []
        assert await rows.recover(session, "t", campaign_id, NOW + LEASE, RETRY) == ids
    async with store.session() as session:
        contacts, live = await rows.contact_states(session, "t", campaign_id, NOW + LEASE)
        assert live == frozenset()
        assert contacts[0].disposition is Disposition.FAILED and not contacts[0].final
        assert contacts[0].next_eligible_at == NOW + LEASE + timedelta(minutes=30)
        late = await rows.finish(
            session, "t", ids[0], node="a", outcome=Disposition.ANSWERED_HUMAN, at=NOW, retry=RETRY
        )
        assert late is None  # its lease was recovered: the dead node's word no longer counts


async def test_another_tenant_cannot_claim_or_see_the_contacts(store: Store) -> None:
    campaign_id, ids = await new_campaign(store, 1)
    async with store.session() as session:
        assert (
            await rows.claim(session, "u", campaign_id, ids, node="a", now=NOW, lease=LEASE) == []
        )
        assert await rows.contact_states(session, "u", campaign_id, NOW) == ([], frozenset())


async def test_a_claimer_skips_the_rows_another_holds_without_waiting(
    pg_server: PostgresServer,  # noqa: F811
) -> None:
    store = await open_migrated(pg_server.create_database())
    try:
        campaign_id, ids = await new_campaign(store, 4)
        async with store.session() as first:
            held = await rows.claim(
                first, "t", campaign_id, ids[:2], node="a", now=NOW, lease=LEASE
            )
            assert held == ids[:2]
            # `first` has not committed: its rows are locked, and the second node skips them
            # at once (no wait: a wait would block here until `first` ends, which it cannot).
            async with store.session() as second:
                other = rows.claim(second, "t", campaign_id, ids, node="b", now=NOW, lease=LEASE)
                assert await asyncio.wait_for(other, timeout=30) == ids[2:]
        async with store.session() as third:
            assert (
                await rows.claim(third, "t", campaign_id, ids, node="c", now=NOW, lease=LEASE) == []
            )
    finally:
        await store.close()


async def test_two_nodes_claiming_at_once_never_share_a_contact(
    pg_server: PostgresServer,  # noqa: F811
) -> None:
    url = pg_server.create_database()
    node_a, node_b = await open_migrated(url), open_store(url)
    try:
        campaign_id, ids = await new_campaign(node_a, 40)

        async def dial(store: Store, node: str) -> list[int]:
            got: list[int] = []
            for start in range(0, len(ids), 5):  # each round asks for a window of contacts
                async with store.session() as session:
                    batch = ids[max(0, start - 5) : start + 5]
                    got += await rows.claim(
                        session, "t", campaign_id, batch, node=node, now=NOW, lease=LEASE
                    )
            return got

        got_a, got_b = await asyncio.gather(dial(node_a, "a"), dial(node_b, "b"))
        assert not set(got_a) & set(got_b)
        assert sorted(got_a + got_b) == ids
        async with node_a.session() as session:
            assert all([await rows.attempts_of(session, "t", i) == 1 for i in ids])
    finally:
        await node_a.close()
        await node_b.close()
