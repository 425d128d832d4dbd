"""Calling windows on a zone's wall clock (`control_api.campaigns.windows`), across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from control_api.campaigns.model import Day, Window
from control_api.campaigns.windows import in_window, next_open

NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OFFICE = (Window(days=WEEKDAYS, start="09:00", end="17:00"),)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_a_window_is_local_time_on_both_sides_of_the_spring_change() -> None:
    # New York moves from EST (-5) to EDT (-4) on Sunday 14 March 2027.
    assert not in_window(utc(2027, 3, 12, 13, 59), NEW_YORK, OFFICE)  # Fri 08:59 EST
    assert in_window(utc(2027, 3, 12, 14, 0), NEW_YORK, OFFICE)  # Fri 09:00 EST
    assert not in_window(utc(2027, 3, 15, 12, 59), NEW_YORK, OFFICE)  # Mon 08:59 EDT
    assert in_window(utc(2027, 3, 15, 13, 0), NEW_YORK, OFFICE)  # Mon 09:00 EDT
    assert in_window(utc(2027, 3, 15, 20, 59), NEW_YORK, OFFICE)  # Mon 16:59 EDT
    assert not in_window(utc(2027, 3, 15, 21, 0), NEW_YORK, OFFICE)  # Mon 17:00 EDT: closed


def test_the_next_opening_after_a_weekend_with_a_dst_change_is_at_local_nine() -> None:
    friday_evening = utc(2027, 3, 12, 22, 30)  # 17:30 EST
    assert next_open(friday_evening, NEW_YORK, OFFICE) == utc(2027, 3, 15, 13, 0)  # 09:00 EDT


def test_next_open_is_now_inside_a_window() -> None:
    inside = utc(2027, 3, 15, 15, 12, 7)
    assert next_open(inside, NEW_YORK, OFFICE) == inside


def test_a_start_in_the_spring_gap_opens_at_the_change() -> None:
    night = (Window(days=EVERY_DAY, start="02:30", end="04:00"),)
    # The day before: 02:30 EST is 07:30 UTC.
    assert next_open(utc(2027, 3, 13, 5, 0), NEW_YORK, night) == utc(2027, 3, 13, 7, 30)
    # 02:30 does not exist on 14 March: the clocks go from 02:00 EST to 03:00 EDT (07:00 UTC).
    assert next_open(utc(2027, 3, 14, 5, 0), NEW_YORK, night) == utc(2027, 3, 14, 7, 0)
    assert not in_window(utc(2027, 3, 14, 6, 59), NEW_YORK, night)


def test_a_window_wholly_in_the_spring_gap_does_not_open_that_day() -> None:
    gap = (Window(days=EVERY_DAY, start="02:10", end="02:50"),)
    # Next: 15 March 02:10 EDT, 06:10 UTC.
    assert next_open(utc(2027, 3, 14, 5, 0), NEW_YORK, gap) == utc(2027, 3, 15, 6, 10)


def test_a_window_in_the_repeated_autumn_hour_opens_twice() -> None:
    # 7 November 2027: 01:00-02:00 happens in EDT (05:00-06:00 UTC), then again in EST.
    repeated = (Window(days=EVERY_DAY, start="01:00", end="01:30"),)
    assert in_window(utc(2027, 11, 7, 5, 15), NEW_YORK, repeated)
    assert not in_window(utc(2027, 11, 7, 5, 45), NEW_YORK, repeated)
    assert in_window(utc(2027, 11, 7, 6, 15), NEW_YORK, repeated)
    assert next_open(utc(2027, 11, 7, 4, 0), NEW_YORK, repeated) == utc(2027, 11, 7, 5, 0)
    assert next_open(utc(2027, 11, 7, 5, 45), NEW_YORK, repeated) == utc(2027, 11, 7, 6, 0)


def test_a_window_to_midnight_and_the_next_days_window() -> None:
    windows = (
        Window(days=("sat",), start="20:00", end="24:00"),
        Window(days=("mon",), start="08:00", end="09:00"),
    )
    zone = ZoneInfo("UTC")
    saturday = utc(2027, 6, 5, 23, 59, 59)
    assert in_window(saturday, zone, windows)
    sunday = saturday + timedelta(seconds=1)
    assert not in_window(sunday, zone, windows)
    assert next_open(sunday, zone, windows) == utc(2027, 6, 7, 8, 0)


def test_a_once_a_week_window_is_found_a_week_ahead() -> None:
    windows = (Window(days=("wed",), start="10:00", end="11:00"),)
    zone = ZoneInfo("Asia/Kolkata")  # +05:30
    just_closed = utc(2027, 6, 9, 5, 30)  # Wednesday 11:00 IST
    assert next_open(just_closed, zone, windows) == utc(2027, 6, 16, 4, 30)
