"""The campaign dialler across restarts and nodes, on SQLite and a real PostgreSQL (two
dialler instances, each with its own connection pool, on one database): a dialler restarted
under the same node name ends the attempts its dead process left (failed, retried only after
the policy's backoff), a new node takes over a dead node's contacts only once their lease has
expired, a call longer than the lease keeps it (renewed), and two nodes dialling one campaign at
once never dial the same contact."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_api.campaigns import queries
from control_api.campaigns.model import Retry
from control_api.store import Store, open_store
from control_api.store.migrate import migrate
from media.clock import VirtualClock
from tests.support.pg import PostgresServer, pg_server  # noqa: F401
from tests.voicenode.dialler_fakes import (
    TENANT,
    Answer,
    FakeHost,
    add_tenant,
    campaign,
    dialler_for,
    fake_node,
    started,
    wait_for,
)
from voicenode.dialler import Dialler, Room

RETRY = Retry(max_attempts=2, backoff_minutes=30, on=("failed",))
LONG_S = 3 * 3600.0
"""An answered call that outlasts the test's part of it (its node dies first)."""


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'voicenode.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    store = open_store(url)
    try:
        await migrate(store)
        await add_tenant(store)
    finally:
        await store.close()
    yield url


async def dial_round(dialler: Dialler) -> None:
    await dialler.pass_once()
    assert await dialler.settle(30)


async def statuses(store: Store, campaign_id: str) -> dict[str, tuple[int, str | None, bool]]:
    async with store.session() as session:
        found = await queries.contacts_page(
            session, TENANT, campaign_id, status=None, limit=100, after=None
        )
    return {r.number: (r.attempts, r.disposition, r.lease_owner is not None) for r in found}


def numbers(n: int, block: int) -> list[str]:
    return [f"+1415555{block}{i:03d}" for i in range(n)]


async def crash(dialler: Dialler, host: FakeHost) -> None:
    """The node dies: its dialler stops following its calls, then the calls go (unrecorded)."""
    await dialler.aclose()
    await host.calls.shutdown()


async def test_a_restarted_node_dials_nobody_twice(url: str) -> None:
    clock = VirtualClock()
    first_store, second_store = open_store(url), open_store(url)
    try:
        talking, done = numbers(4, 1), numbers(1, 2)
        async with fake_node(first_store, clock) as first:
            for number in talking:
                first.answers[number] = Answer("human", talk_s=LONG_S)
            first.answers[done[0]] = Answer("busy")
            campaign_id = await started(first_store, campaign(talking + done, retry=RETRY))
            before = dialler_for(first, "node-a")
            before.start()
            await dial_round(before)
            assert sorted(d.number for d in first.dials) == sorted(talking + done)
            await crash(before, first)
        async with fake_node(second_store, clock) as second:
            second.answers.update(first.answers)
            after = dialler_for(second, "node-a")  # the same node, started again
            after.start()
            await after.recover_own()
            await dial_round(after)
            assert second.dials == []  # failed, retried only after the backoff
            got = await statuses(second_store, campaign_id)
            assert got == {
                **{n: (1, "failed", False) for n in talking},
                done[0]: (1, "busy", False),
            }
            await clock.advance(30 * 60)
            await dial_round(after)
            assert sorted(d.number for d in second.dials) == sorted(talking)  # the retry
            await after.aclose()
    finally:
        await first_store.close()
        await second_store.close()


async def test_another_node_takes_a_dead_nodes_contacts_after_their_lease(url: str) -> None:
    clock = VirtualClock()
    store_a, store_b = open_store(url), open_store(url)
    try:
        talking = numbers(3, 3)
        async with fake_node(store_a, clock) as node_a:
            for number in talking:
                node_a.answers[number] = Answer("human", talk_s=LONG_S)
            campaign_id = await started(store_a, campaign(talking, retry=RETRY))
            dead = dialler_for(node_a, "node-a", lease_s=120)
            dead.start()
            await dial_round(dead)
            await crash(dead, node_a)
        async with fake_node(store_b, clock) as node_b:
            node_b.answers.update(node_a.answers)
            taker = dialler_for(node_b, "node-b", lease_s=120)
            taker.start()
            await taker.recover_own()  # its own name holds nothing
            await dial_round(taker)
            held = await statuses(store_b, campaign_id)
            assert all(lease for _a, _d, lease in held.values())  # node-a's, still
            await clock.advance(119)
            await dial_round(taker)
            assert node_b.dials == []
            await clock.advance(1)  # the lease has expired: failed, then the backoff
            await dial_round(taker)
            assert node_b.dials == []
            ended = await statuses(store_b, campaign_id)
            assert ended == {n: (1, "failed", False) for n in talking}
            await clock.advance(30 * 60)
            await dial_round(taker)
            assert sorted(d.number for d in node_b.dials) == sorted(talking)
            await taker.aclose()
    finally:
        await store_a.close()
        await store_b.close()


NODE_ROOM = 10


def room_of(node: FakeHost) -> Room:
    """Each node takes 10 calls at once: 20 contacts need both."""

    async def room(_tenant: str) -> int:
        return max(0, NODE_ROOM - len(node.live))

    return room


async def test_two_nodes_at_once_never_dial_the_same_contact(
    pg_server: PostgresServer,  # noqa: F811
) -> None:
    url = pg_server.create_database()
    setup = open_store(url)
    await migrate(setup)
    await add_tenant(setup)
    await setup.close()
    clock = VirtualClock()
    store_a, store_b = open_store(url), open_store(url)
    everyone = numbers(20, 4)
    try:
        async with fake_node(store_a, clock) as node_a, fake_node(store_b, clock) as node_b:
            for node in (node_a, node_b):
                node.answers.update({n: Answer("human", talk_s=30) for n in everyone})
            body = campaign(everyone, max_concurrent=1000, calls_per_minute=600)
            campaign_id = await started(store_a, body)
            a = dialler_for(node_a, "node-a", room=room_of(node_a))
            b = dialler_for(node_b, "node-b", room=room_of(node_b))
            a.start()
            b.start()
            for _ in range(6):  # each pass plans the same first contacts on both nodes
                await asyncio.gather(dial_round(a), dial_round(b))
            dialled = Counter(d.number for d in node_a.dials + node_b.dials)
            assert dialled == Counter(everyone)  # each exactly once
            assert len(node_a.dials) == len(node_b.dials) == NODE_ROOM  # each node full
            await clock.advance(30)
            await wait_for(lambda: not node_a.live and not node_b.live, node_a)
            assert await a.settle(30) and await b.settle(30)
            got = await statuses(store_a, campaign_id)
            assert got == {n: (1, "answered_human", False) for n in everyone}
            await a.aclose()
            await b.aclose()
    finally:
        await store_a.close()
        await store_b.close()


async def test_a_call_longer_than_the_lease_keeps_it_renewed(url: str) -> None:
    clock = VirtualClock()
    store_a, store_b = open_store(url), open_store(url)
    try:
        (number,) = numbers(1, 5)
        async with fake_node(store_a, clock) as node_a, fake_node(store_b, clock) as node_b:
            node_a.answers[number] = Answer("human", talk_s=300)
            node_b.answers.update(node_a.answers)
            campaign_id = await started(store_a, campaign([number], retry=RETRY))
            a = dialler_for(node_a, "node-a", lease_s=120)
            b = dialler_for(node_b, "node-b", lease_s=120)
            a.start()
            b.start()
            await dial_round(a)
            for _ in range(9):  # the call goes on for 300 s, 2.5 leases
                await clock.advance(30)
                await dial_round(a)  # renews its lease every 40 s
                await dial_round(b)
                assert node_b.dials == []
                held = await statuses(store_b, campaign_id)
                assert held == {number: (0, None, True)}
            await clock.advance(30)
            await wait_for(lambda: not node_a.live, node_a)
            assert await a.settle(30)
            assert await statuses(store_a, campaign_id) == {number: (1, "answered_human", False)}
            await a.aclose()
            await b.aclose()
    finally:
        await store_a.close()
        await store_b.close()
