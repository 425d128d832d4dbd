"""Calling windows on the wall clock of a time zone.

A window is local time: "09:00-17:00" is nine to five on the clocks of the zone, whatever its
offset that day, so a window is DST-correct by reading the instant in the zone
(`datetime.astimezone`). Where a start falls in a spring-forward gap (02:30 on the night the
clocks skip from 02:00 to 03:00) the window opens at the first instant whose local time is
past the start: the moment of the change. Where a fall-back repeats an hour, a window
covering it is open in both.

Instants are aware datetimes (any zone; UTC in practice); results are in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from control_api.campaigns.model import DAYS, Window

_LOOKAHEAD_DAYS: Final = 8
"""Every weekly window recurs within a week; one day more covers the day already begun."""


def in_window(at: datetime, zone: ZoneInfo, windows: Sequence[Window]) -> bool:
    """Whether the local time of `at` in `zone` is inside one of `windows`."""
    local = at.astimezone(zone)
    day = DAYS[local.weekday()]
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(
        day in window.days and window.start_minute * 60 <= second < window.end_minute * 60
        for window in windows
    )


def next_open(at: datetime, zone: ZoneInfo, windows: Sequence[Window]) -> datetime:
    """`at` if a window is open then, else the instant the next one opens (in UTC)."""
    if in_window(at, zone, windows):
        return at.astimezone(UTC)
    today = at.astimezone(zone).date()
    starts = (
        start
        for offset in range(_LOOKAHEAD_DAYS)
        for day in (today + timedelta(days=offset),)
        for window in windows
        if DAYS[day.weekday()] in window.days
        for start in _openings(day, window, zone, windows)
    )
    later = [start for start in starts if start > at]
    if not later:  # windows are never empty (model.Schedule), so a week always holds one
        raise ValueError("no calling window in the coming week")
    return min(later)


def _openings(
    day: date, window: Window, zone: ZoneInfo, windows: Sequence[Window]
) -> list[datetime]:
    """The instants `window` opens on local `day`: its start (twice where a fall-back repeats
    it), or, where the start falls in a spring-forward gap, the change itself (none if the
    window lies wholly in the gap)."""
    minute = window.start_minute
    naive = datetime.combine(day, time(minute // 60, minute % 60))
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return [first] if second == first else [first, second]
    # In a gap, fold=0 reads the time with the offset before the change (the later instant),
    # fold=1 with the offset after (the earlier one); the change lies between the two.
    change = _change_between(second, first, zone)
    return [change] if in_window(change, zone, windows) else []


def _change_between(earlier: datetime, later: datetime, zone: ZoneInfo) -> datetime:
    """The first whole minute after `earlier` whose UTC offset in `zone` is `later`'s."""
    step = timedelta(minutes=1)
    offset = later.astimezone(zone).utcoffset()
    while later - earlier > step:
        middle = earlier + ((later - earlier) // step // 2) * step
        if middle.astimezone(zone).utcoffset() == offset:
            later = middle
        else:
            earlier = middle
    return later
