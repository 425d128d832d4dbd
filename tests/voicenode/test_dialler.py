"""The campaign dialler (`voicenode.dialler`) on a virtual clock, against a real SQLite store
and `LiveCalls`, with a fake dialer whose far ends answer as each number's script says:
every disposition recorded (and linked to its call), the events written, retries per the
policy inside the calling window, pacing under the tenant's room and after a quota refusal,
do-not-call contacts never dialled, the campaign completed, the contact's variables and the
campaign's caller ID given to its call, and the loop woken by `wake()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from control_api.analytics.events import ContactAttemptedEvent, decode_event
from control_api.analytics.tables import OutboxRow
from control_api.campaigns import queries, rows
from control_api.campaigns.lifecycle import Action, Disposition
from control_api.campaigns.model import Retry
from control_api.number_ranges import set_ranges
from control_api.store import Store
from media.clock import VirtualClock
from tests.support.host import temp_store
from tests.voicenode.dialler_fakes import (
    EPOCH,
    TENANT,
    Answer,
    add_tenant,
    campaign,
    dialler_for,
    fake_node,
    run_until_idle,
    started,
    wait_for,
    wall_of,
)
from voicenode.dialler import open_dialler

HOUR = 3600.0


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with temp_store() as opened:
        await add_tenant(opened)
        yield opened


async def contacts_of(store: Store, campaign_id: str) -> dict[str, rows.ContactRow]:
    async with store.session() as session:
        found = await queries.contacts_page(
            session, TENANT, campaign_id, status=None, limit=100, after=None
        )
    return {row.number: row for row in found}


async def attempts_of(store: Store, contact_id: int) -> list[rows.AttemptRow]:
    async with store.session() as session:
        return (await queries.attempts_of(session, TENANT, [contact_id]))[contact_id]


async def state_of(store: Store, campaign_id: str) -> str:
    async with store.session() as session:
        row = await queries.get_campaign(session, TENANT, campaign_id)
    assert row is not None
    return row.state


async def events_of(store: Store) -> list[tuple[str, str]]:
    async with store.session() as session:
        found = await session.scalars(select(OutboxRow).order_by(OutboxRow.id))
        return [(row.type, row.payload) for row in found]


NUMBERS = {
    "+14155550101": Answer("human"),
    "+14155550102": Answer("machine"),
    "+14155550103": Answer("voicemail"),
    "+14155550104": Answer("busy"),
    "+14155550105": Answer("late_busy", talk_s=8),
    "+14155550106": Answer("no_answer", talk_s=30),
    "+14155550107": Answer("unreachable"),
    "+14155550108": Answer("human"),
}
EXPECTED = {
    "+14155550101": Disposition.ANSWERED_HUMAN,
    "+14155550102": Disposition.ANSWERED_MACHINE,
    "+14155550103": Disposition.VOICEMAIL_LEFT,
    "+14155550104": Disposition.BUSY,
    "+14155550105": Disposition.BUSY,
    "+14155550106": Disposition.NO_ANSWER,
    "+14155550107": Disposition.FAILED,
    "+14155550108": Disposition.DO_NOT_CALL,
}


async def test_every_contact_ends_with_its_disposition_and_the_campaign_completes(
    store: Store,
) -> None:
    async with store.session() as session:
        await set_ranges(session, TENANT, ["+1415555010*"])  # its `from` is the tenant's
    async with fake_node(store) as host:
        host.answers.update(NUMBERS)
        body = campaign(
            list(NUMBERS),
            variables={"name": "Ann"},
            voicemail="leave_message",
            from_="+14155550100",
        )
        campaign_id = await started(store, body)
        dialler = dialler_for(host, barred=frozenset({"+14155550108"}))
        dialler.start()
        try:
            await run_until_idle(dialler, host, until_s=120)
        finally:
            await dialler.aclose()
        contacts = await contacts_of(store, campaign_id)
        got = {number: Disposition(row.disposition or "") for number, row in contacts.items()}
        assert got == EXPECTED
        assert all(row.final and row.lease_owner is None for row in contacts.values())
        assert "+14155550108" not in {d.number for d in host.dials}
        assert sorted(d.number for d in host.dials) == sorted(list(NUMBERS)[:7])
        assert all(d.variables == {"name": "Ann"} for d in host.dials)
        assert all(d.on_machine == "leave_message" for d in host.dials)
        assert all(d.caller_id == "+14155550100" for d in host.dials)  # the campaign's `from`
        assert host.call_variables == {} and host.call_on_machine == {}
        answered = {"+14155550101", "+14155550102", "+14155550103"}
        for number, row in contacts.items():
            history = await attempts_of(store, row.id)
            if number == "+14155550108":
                assert history == []
                continue
            (attempt,) = history
            (dial,) = host.dialled(number)
            assert attempt.disposition == EXPECTED[number].value
            assert attempt.call_id == (dial.call_id if number in answered else None)
            assert attempt.node == "node-a"
        assert await state_of(store, campaign_id) == "completed"
        events = await events_of(store)
        attempted = [decode_event(p) for t, p in events if t == "contact.attempted"]
        assert sorted(
            (e.contact_id, e.disposition) for e in attempted if isinstance(e, ContactAttemptedEvent)
        ) == sorted((contacts[n].id, d.value) for n, d in EXPECTED.items())
        assert all(e.tenant_id == TENANT for e in attempted)
        assert all("+1415" not in payload for _, payload in events)
        assert [t for t, _ in events].count("campaign.completed") == 1


async def test_retries_follow_the_policy_inside_the_calling_window(store: Store) -> None:
    """Busy is retried 30 min later, three attempts in all; the third would fall after the
    window's 17:00 end, so it waits for Tuesday's 09:00 opening."""
    async with fake_node(store) as host:
        await host.clock.advance(3 * HOUR + 10 * 60)  # Monday 16:10
        host.answers["+14155550201"] = Answer("busy")
        host.answers["+14155550202"] = Answer("no_answer", talk_s=30)
        retry = Retry(max_attempts=3, backoff_minutes=30, on=("busy",))
        body = campaign(["+14155550201", "+14155550202"], retry=retry)
        campaign_id = await started(store, body)
        dialler = dialler_for(host)
        dialler.start()
        try:
            await run_until_idle(dialler, host, until_s=22 * HOUR)
        finally:
            await dialler.aclose()
        busy = [EPOCH_OFFSET(d.at) for d in host.dialled("+14155550201")]
        assert busy == ["mon 16:10", "mon 16:40", "tue 09:00"]
        assert [EPOCH_OFFSET(d.at) for d in host.dialled("+14155550202")] == ["mon 16:10"]
        contacts = await contacts_of(store, campaign_id)
        assert contacts["+14155550201"].attempts == 3
        assert contacts["+14155550201"].disposition == "busy"
        assert contacts["+14155550202"].disposition == "no_answer"  # not in retry.on
        assert await state_of(store, campaign_id) == "completed"


def EPOCH_OFFSET(at: float) -> str:  # noqa: N802 - reads as the label it builds
    when = wall_of(VirtualClock(at))()
    return when.strftime("%a %H:%M").lower()


async def test_pacing_holds_the_room_and_a_quota_refusal_is_paced_not_failed(
    store: Store,
) -> None:
    async with fake_node(store) as host:
        numbers = [f"+1415555030{i}" for i in range(6)]
        for number in numbers:
            host.answers[number] = Answer("human", talk_s=60)
        host.answers[numbers[0]] = Answer("human", talk_s=60, over_quota=1)

        async def room(_tenant: str) -> int:
            return max(0, 2 - len(host.live))

        campaign_id = await started(store, campaign(numbers, max_concurrent=5))
        dialler = dialler_for(host, room=room)
        dialler.start()
        try:
            await run_until_idle(dialler, host, until_s=600)
        finally:
            await dialler.aclose()
        assert host.refused == [numbers[0]]
        assert host.peak_live <= 2
        assert sorted(d.number for d in host.dials) == sorted(numbers)
        contacts = await contacts_of(store, campaign_id)
        for row in contacts.values():
            assert row.disposition == "answered_human"
            assert len(await attempts_of(store, row.id)) == 1
        assert await state_of(store, campaign_id) == "completed"


async def test_calls_per_minute_and_concurrency_pace_the_dials(store: Store) -> None:
    async with fake_node(store) as host:
        numbers = [f"+1415555040{i}" for i in range(8)]
        for number in numbers:
            host.answers[number] = Answer("human", talk_s=5)
        await started(store, campaign(numbers, max_concurrent=3, calls_per_minute=4))
        dialler = dialler_for(host)
        dialler.start()
        try:
            await run_until_idle(dialler, host, until_s=600)
        finally:
            await dialler.aclose()
        times = sorted(d.at for d in host.dials)
        assert len(times) == 8
        assert host.peak_live <= 3
        for i, at in enumerate(times):  # never more than 4 dials in any 60 s
            assert sum(1 for other in times[i:] if other < at + 60) <= 4


async def test_the_loop_wakes_on_wake_and_a_paused_campaign_is_not_dialled(
    store: Store,
) -> None:
    async with fake_node(store) as host:
        host.answers["+14155550501"] = Answer("human", talk_s=5)
        body = campaign(["+14155550501"])
        async with store.session() as session:
            campaign_id = await rows.create_campaign(session, TENANT, body, EPOCH)
        async with open_dialler(
            host,
            node="node-a",
            clock=host.clock,
            wall=wall_of(host.clock),
            room=lambda _t: _room(),
            idle_s=HOUR,
        ) as dialler:
            await wait_for(lambda: dialler.passes >= 1, host)
            assert host.dials == []  # a draft is not dialled
            async with store.session() as session:
                await queries.move(session, TENANT, campaign_id, Action.START)
                await queries.move(session, TENANT, campaign_id, Action.PAUSE)
            dialler.wake()
            await wait_for(lambda: dialler.passes >= 2, host)
            assert host.dials == []  # nor a paused one
            async with store.session() as session:
                await queries.move(session, TENANT, campaign_id, Action.RESUME)
            dialler.wake()  # long before the idle hour is up
            await wait_for(lambda: len(host.dials) == 1, host)
            await host.clock.advance(5)
            await wait_for(lambda: dialler.calls == 0, host)
            async with asyncio.timeout(30):  # the recording woke the loop, which completes it
                while await state_of(store, campaign_id) != "completed":  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert len(host.dials) == 1


async def _room() -> int:
    return 10


async def test_a_caller_id_the_tenant_no_longer_holds_dials_nobody(store: Store) -> None:
    # accepted when the campaign was made, the number has left the tenant since: no call may
    # go out through the trunk showing it
    async with fake_node(store) as host:
        host.answers.update({"+14155550101": Answer("human")})
        await started(store, campaign(["+14155550101"], from_="+14155550100"))
        dialler = dialler_for(host)
        dialler.start()
        try:
            await run_until_idle(dialler, host, until_s=60)
            assert host.dials == []
            async with store.session() as session:  # the number is the tenant's again
                await set_ranges(session, TENANT, ["+14155550100"])
            await run_until_idle(dialler, host, until_s=120)
        finally:
            await dialler.aclose()
        assert [d.caller_id for d in host.dials] == ["+14155550100"]
