"""The dialler's decision (`control_api.campaigns.pacing.plan`) on an injected instant: rate,
concurrency, capacity, windows in the contact's zone across DST, do-not-call, retries,
completion and the next wake-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from control_api.campaigns.lifecycle import (
    CampaignState,
    ContactState,
    Disposition,
    mark_do_not_call,
    record_attempt,
)
from control_api.campaigns.model import CampaignIn, Contact, Retry, Schedule, Window
from control_api.campaigns.pacing import DialerView, Plan, plan
from control_api.campaigns.windows import in_window

MONDAY_10_NY = datetime(2027, 6, 7, 14, 0, tzinfo=UTC)  # 10:00 EDT, 07:00 PDT
OFFICE = Window(days=("mon", "tue", "wed", "thu", "fri"), start="09:00", end="17:00")


def campaign(n: int = 5, **changes: Any) -> CampaignIn:
    fields: dict[str, Any] = {
        "name": "c",
        "agent": "a",
        "via": "sip",
        "contacts": tuple(Contact(number=f"+1415555{i:04d}") for i in range(n)),
        "schedule": Schedule(timezone="America/New_York", windows=(OFFICE,)),
        "max_concurrent": 10,
        "calls_per_minute": 10,
    }
    fields.update(changes)
    return CampaignIn(**fields)


def states(c: CampaignIn) -> list[ContactState]:
    return [
        ContactState(id=i, number=contact.number, timezone=contact.timezone)
        for i, contact in enumerate(c.contacts)
    ]


def view(c: CampaignIn, now: datetime = MONDAY_10_NY, **changes: Any) -> DialerView:
    fields: dict[str, Any] = {
        "now": now,
        "state": CampaignState.RUNNING,
        "contacts": states(c),
        "capacity": 100,
    }
    fields.update(changes)
    return DialerView(**fields)


@pytest.mark.parametrize(
    "state", [CampaignState.DRAFT, CampaignState.PAUSED, CampaignState.CANCELLED]
)
def test_only_a_running_campaign_dials(state: CampaignState) -> None:
    assert plan(campaign(), view(campaign(), state=state)) == Plan()


def test_calls_per_minute_caps_a_burst_and_wakes_when_the_minute_is_over() -> None:
    c = campaign(5, calls_per_minute=3)
    first = plan(c, view(c))
    assert first.dial == (0, 1, 2)
    assert first.wake_at == MONDAY_10_NY + timedelta(minutes=1)


def test_the_rate_is_a_sliding_minute_over_the_recent_dials() -> None:
    c = campaign(5, calls_per_minute=3)
    recent = [MONDAY_10_NY - timedelta(seconds=50), MONDAY_10_NY - timedelta(seconds=10)]
    older = MONDAY_10_NY - timedelta(seconds=60)  # left the window exactly now
    result = plan(c, view(c, recent_dials=[older, *recent]))
    assert result.dial == (0,)
    assert result.wake_at == MONDAY_10_NY + timedelta(seconds=10)


def test_max_concurrent_counts_live_calls_and_waits_for_an_event() -> None:
    c = campaign(5, max_concurrent=3)
    live = states(c)[:2]
    result = plan(c, view(c, live=frozenset(s.id for s in live)))
    assert result.dial == (2,)
    assert result.wake_at is None  # a live call ending wakes the dialler, not the clock


@pytest.mark.parametrize(("capacity", "dialled"), [(0, ()), (1, (0,)), (2, (0, 1))])
def test_the_nodes_capacity_caps_the_dials(capacity: int, dialled: tuple[int, ...]) -> None:
    c = campaign(5)
    result = plan(c, view(c, capacity=capacity))
    assert result.dial == dialled
    assert result.wake_at is None


def test_do_not_call_numbers_are_ended_never_dialled() -> None:
    c = campaign(3)
    result = plan(c, view(c, do_not_call=frozenset({c.contacts[1].number})))
    assert result.dial == (0, 2)
    assert result.do_not_call == (1,)
    assert not result.complete


def test_a_live_call_to_a_number_put_on_the_list_is_left_to_its_attempt() -> None:
    c = campaign(2)
    result = plan(c, view(c, live=frozenset({1}), do_not_call=frozenset({c.contacts[1].number})))
    assert result.dial == (0,)
    assert result.do_not_call == ()


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan(campaign(), view(campaign(), now=MONDAY_10_NY.replace(tzinfo=None)))


def test_a_campaign_whose_last_contacts_are_on_the_list_completes() -> None:
    c = campaign(2)
    contacts = states(c)
    contacts[0] = record_attempt(contacts[0], Disposition.ANSWERED_HUMAN, MONDAY_10_NY, c.retry)
    dnc = frozenset({c.contacts[1].number})
    result = plan(c, view(c, contacts=contacts, do_not_call=dnc))
    assert result == Plan(do_not_call=(1,), complete=True)


def test_the_contacts_own_zone_decides_its_window() -> None:
    contacts = (
        Contact(number="+12125550100"),
        Contact(number="+14155550100", variables={"timezone": "America/Los_Angeles"}),
    )
    c = campaign(contacts=contacts)
    result = plan(c, view(c))
    assert result.dial == (0,)  # 10:00 in New York, 07:00 in Los Angeles
    assert result.wake_at == datetime(2027, 6, 7, 16, 0, tzinfo=UTC)  # 09:00 PDT
    later = plan(c, view(c, now=result.wake_at, live=frozenset({0})))
    assert later.dial == (1,)


def test_outside_the_window_it_wakes_at_the_next_opening_across_a_dst_change() -> None:
    berlin = Schedule(timezone="Europe/Berlin", windows=(OFFICE,))
    c = campaign(2, schedule=berlin)
    saturday = datetime(2027, 3, 27, 18, 0, tzinfo=UTC)  # summer time begins on the 28th
    result = plan(c, view(c, now=saturday))
    assert result.dial == ()
    monday_nine_cest = datetime(2027, 3, 29, 7, 0, tzinfo=UTC)  # not 08:00 UTC (CET)
    assert result.wake_at == monday_nine_cest
    assert plan(c, view(c, now=monday_nine_cest)).dial == (0, 1)
    assert plan(c, view(c, now=monday_nine_cest - timedelta(seconds=1))).dial == ()


def test_a_retry_waits_its_backoff_then_goes_before_first_attempts() -> None:
    c = campaign(3, retry=Retry(max_attempts=2, backoff_minutes=30, on=("busy",)))
    contacts = states(c)
    contacts[2] = record_attempt(contacts[2], Disposition.BUSY, MONDAY_10_NY, c.retry)
    contacts = contacts[2:]  # the others are not in this test
    assert plan(c, view(c, contacts=contacts)).wake_at == MONDAY_10_NY + timedelta(minutes=30)
    contacts = [*states(c)[:2], contacts[0]]
    due = plan(c, view(c, now=MONDAY_10_NY + timedelta(minutes=30), contacts=contacts, capacity=1))
    assert due.dial == (2,)


def test_final_contacts_complete_the_campaign_once_no_call_is_live() -> None:
    c = campaign(2)
    contacts = [
        record_attempt(s, Disposition.ANSWERED_HUMAN, MONDAY_10_NY, c.retry) for s in states(c)
    ]
    assert plan(c, view(c, contacts=contacts)).complete
    assert plan(c, view(c, contacts=contacts, live=frozenset({1}))) == Plan()


def test_a_running_campaign_with_no_contacts_completes() -> None:
    """Its contacts erased since its start (a start needs one): nothing to dial, nothing to
    wait for, at any hour."""
    c = campaign(0)
    for now in (MONDAY_10_NY, MONDAY_10_NY + timedelta(hours=12)):
        assert plan(c, view(c, now=now)) == Plan(complete=True)


Outcomes = Callable[[int, int], Disposition]


def run(
    c: CampaignIn, start: datetime, outcome: Outcomes
) -> tuple[list[ContactState], list[tuple[datetime, int]]]:
    """Drives the plan like the dialler would on a virtual clock: calls end the instant they
    are placed with `outcome(contact, attempt)`; the clock jumps to each `wake_at`."""
    contacts = states(c)
    dials: list[tuple[datetime, int]] = []
    now = start
    for _ in range(1000):
        result = plan(c, view(c, now=now, contacts=contacts, recent_dials=[t for t, _ in dials]))
        for i in result.do_not_call:
            contacts[i] = mark_do_not_call(contacts[i])
        for i in result.dial:
            dials.append((now, i))
            contacts[i] = record_attempt(
                contacts[i], outcome(i, contacts[i].attempts), now, c.retry
            )
        if result.complete:
            return contacts, dials
        if not result.dial and not result.do_not_call:
            assert result.wake_at is not None and result.wake_at > now
            now = result.wake_at
    raise AssertionError("the campaign did not complete")


def test_a_whole_campaign_on_a_virtual_clock() -> None:
    retry = Retry(max_attempts=3, backoff_minutes=30, on=("busy", "no_answer", "machine"))
    c = campaign(20, calls_per_minute=4, retry=retry)
    script = {
        0: [Disposition.BUSY, Disposition.ANSWERED_HUMAN],
        1: [Disposition.NO_ANSWER] * 3,
        2: [Disposition.ANSWERED_MACHINE, Disposition.VOICEMAIL_LEFT],
        3: [Disposition.FAILED],
    }
    late_friday = datetime(2027, 6, 11, 20, 50, tzinfo=UTC)  # 16:50 EDT: ten minutes left

    def outcome(contact: int, attempt: int) -> Disposition:
        return script.get(contact, [Disposition.ANSWERED_HUMAN])[attempt]

    contacts, dials = run(c, late_friday, outcome)
    zone = ZoneInfo(c.schedule.timezone)
    assert all(in_window(t, zone, c.schedule.windows) for t, _ in dials)
    times = sorted(t for t, _ in dials)
    assert all(sum(1 for u in times if t - timedelta(minutes=1) < u <= t) <= 4 for t in times)
    assert [s.attempts for s in contacts[:4]] == [2, 3, 2, 1]
    assert [s.disposition for s in contacts[:4]] == [
        Disposition.ANSWERED_HUMAN,
        Disposition.NO_ANSWER,
        Disposition.VOICEMAIL_LEFT,
        Disposition.FAILED,
    ]
    assert all(s.final for s in contacts)
    retried = [t for t, i in dials if i == 1]
    assert all(b - a >= timedelta(minutes=30) for a, b in zip(retried, retried[1:], strict=False))
    assert len(dials) == 20 + 1 + 2 + 1
