"""The dialler's decision, sans-IO: which contacts to dial now, and when to look again.

`plan(campaign, view)` reads one `DialerView` (the instant, the campaign's state, its
contacts, its live calls, its recent dials, the tenant's do-not-call numbers and the node's
capacity) and returns a `Plan`. Nothing here reads a clock or the store: the dialler builds
the view, dials what the plan says, records the attempts and sleeps until `wake_at`.

A contact is dialled when the campaign is running and the contact is not final, not on a
live call, past its retry backoff (`next_eligible_at`), inside a calling window in its own
time zone (else the campaign's), and its number is not on the do-not-call list; a contact
whose number is on it is never dialled but ended as do_not_call (`Plan.do_not_call`). At
most `budget` contacts are dialled: the room under `max_concurrent` live calls, under
`calls_per_minute` dials in any 60 s (a sliding window over the dial instants), and under
the node's capacity. Retries that are due go before first attempts, then the older
eligibility, then the contact's id (the list's order).

`Plan.wake_at` is the next instant at which time alone can make a contact dialable (a
backoff ending, a window opening, a dial leaving the rate window). It is None when only an
event can: a live call ending, the node's capacity growing, the campaign being resumed or
changed; the dialler looks again on those. It is never at or before `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from control_api.campaigns.lifecycle import CampaignState, ContactState
from control_api.campaigns.model import CampaignSettings
from control_api.campaigns.windows import in_window, next_open

RATE_WINDOW: Final = timedelta(minutes=1)


class DialerView(msgspec.Struct, frozen=True, kw_only=True):
    """What the dialler knows of one campaign at `now` (an aware datetime)."""

    now: datetime
    state: CampaignState
    contacts: Sequence[ContactState]
    live: frozenset[int] = frozenset()
    """The ids of the contacts on a call now."""
    recent_dials: Sequence[datetime] = ()
    """When the campaign's recent calls were placed (older than a minute are ignored)."""
    do_not_call: frozenset[str] = frozenset()
    """The tenant's do-not-call numbers (E.164)."""
    capacity: int = 0
    """How many more calls the node (admission, the tenant's quota) would take now."""


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    dial: tuple[int, ...] = ()
    """The ids of the contacts to dial now, in order."""
    do_not_call: tuple[int, ...] = ()
    """The ids of the contacts to end as do_not_call (never dialled)."""
    complete: bool = False
    """Every contact is final and no call is live: the campaign completes."""
    wake_at: datetime | None = None


def plan(campaign: CampaignSettings, view: DialerView) -> Plan:
    """What to do for `campaign` now: see the module's docstring."""
    if view.state is not CampaignState.RUNNING:
        return Plan()
    if view.now.utcoffset() is None:
        raise ValueError("the dialler's now must be an aware datetime")
    barred = tuple(
        c.id
        for c in view.contacts
        if not c.final and c.id not in view.live and c.number in view.do_not_call
    )
    waiting = [
        c
        for c in view.contacts
        if not c.final and c.id not in view.live and c.number not in view.do_not_call
    ]
    if not waiting and not view.live:
        return Plan(do_not_call=barred, complete=True)
    due = sorted((c for c in waiting if _dialable(campaign, c, view.now)), key=_priority)
    rate_room = campaign.calls_per_minute - len(_in_rate_window(view.recent_dials, view.now))
    room = min(campaign.max_concurrent - len(view.live), rate_room, view.capacity)
    dial = tuple(c.id for c in due[: max(room, 0)])
    rest = [c for c in waiting if c.id not in dial]
    wake = _wake_at(campaign, view, rest, len(dial))
    return Plan(dial=dial, do_not_call=barred, wake_at=wake)


def zone_of(campaign: CampaignSettings, contact: ContactState) -> ZoneInfo:
    """The zone a contact's windows are read in: its own, else the campaign's."""
    return ZoneInfo(contact.timezone or campaign.schedule.timezone)


def _dialable(campaign: CampaignSettings, contact: ContactState, now: datetime) -> bool:
    if contact.next_eligible_at is not None and contact.next_eligible_at > now:
        return False
    return in_window(now, zone_of(campaign, contact), campaign.schedule.windows)


def _priority(contact: ContactState) -> tuple[bool, datetime | int, int]:
    """Due retries first (the oldest due first), then first attempts in the list's order."""
    if contact.next_eligible_at is None:
        return (True, 0, contact.id)
    return (False, contact.next_eligible_at, contact.id)


def _in_rate_window(dials: Sequence[datetime], now: datetime) -> list[datetime]:
    return sorted(d for d in dials if now - RATE_WINDOW < d <= now)


def _rate_free_at(campaign: CampaignSettings, view: DialerView, dialled: int) -> datetime | None:
    """When the rate window next has room, counting the dials made now; None: it has room."""
    times = _in_rate_window(view.recent_dials, view.now) + [view.now] * dialled
    times.sort()
    if len(times) < campaign.calls_per_minute:
        return None
    return times[len(times) - campaign.calls_per_minute] + RATE_WINDOW


def _wake_at(
    campaign: CampaignSettings, view: DialerView, rest: Sequence[ContactState], dialled: int
) -> datetime | None:
    """The next instant time alone may make one of `rest` dialable (never at or before now)."""
    if not rest:
        return None
    windows = campaign.schedule.windows
    earliest = min(
        next_open(max(view.now, c.next_eligible_at or view.now), zone_of(campaign, c), windows)
        for c in rest
    )
    rate_free = _rate_free_at(campaign, view, dialled)
    if earliest > view.now:
        return earliest if rate_free is None else max(earliest, rate_free)
    # Someone is dialable now but was not dialled: the rate, the concurrency or the capacity.
    return rate_free
