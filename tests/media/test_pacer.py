"""The pacer on a virtual clock: exact schedule, bounded catch-up, counted skips."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.clock import MonotonicClock, VirtualClock
from media.pacer import Pacer

PERIOD = 0.020


async def run_consumer(
    clock: VirtualClock, pacer: Pacer, work: list[float], *, until: float
) -> list[tuple[int, float]]:
    """Take one tick per entry of `work`, then spend that long on it; advance time to `until`."""
    seen: list[tuple[int, float]] = []

    async def consume() -> None:
        for duration in work:
            n = await pacer.wait_next()
            seen.append((n, clock.now()))
            if duration:
                await clock.sleep_until(clock.now() + duration)

    task = asyncio.create_task(consume())
    await clock.advance(until)
    await task
    return seen


async def test_a_thousand_ticks_land_exactly_on_the_schedule() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)
    seen: list[tuple[int, float]] = []

    async def consume() -> None:
        async for n in pacer.ticks():
            seen.append((n, clock.now()))
            if n == 999:
                return

    task = asyncio.create_task(consume())
    await clock.advance(1000 * PERIOD)
    await task
    assert [n for n, _ in seen] == list(range(1000))
    assert all(t == n * PERIOD for n, t in seen)
    assert (pacer.late_ticks, pacer.skipped) == (0, 0)


async def test_time_advanced_in_uneven_steps_does_not_shift_the_schedule() -> None:
    clock = VirtualClock(start=5.0)
    pacer = Pacer(clock)
    seen: list[tuple[int, float]] = []

    async def consume() -> None:
        async for n in pacer:
            seen.append((n, clock.now()))
            if n == 499:
                return

    task = asyncio.create_task(consume())
    for _ in range(1500):  # 1500 * 7 ms, summed in floating point, in the driver
        await clock.advance(0.007)
    await task
    assert [n for n, _ in seen] == list(range(500))
    assert all(t == 5.0 + n * PERIOD for n, t in seen)


async def test_work_inside_a_tick_does_not_accumulate_drift() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)
    seen = await run_consumer(clock, pacer, [0.015] * 200, until=5.0)
    assert seen == [(n, n * PERIOD) for n in range(200)]
    assert (pacer.late_ticks, pacer.skipped) == (0, 0)


async def test_a_200_ms_stall_is_counted_not_bursted() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)  # max_lag = 2 periods
    work = [0.0] * 10 + [0.205] + [0.0] * 10  # tick 10 takes 205 ms
    seen = await run_consumer(clock, pacer, work, until=2.0)
    ticks = [n for n, _ in seen]
    assert ticks == list(range(11)) + list(range(20, 30))
    assert pacer.skipped == 9  # ticks 11..19 never happened
    assert pacer.late_ticks == 1  # tick 20, handed out 5 ms after its deadline
    times = [t for _, t in seen]
    assert times[11] == pytest.approx(0.405)
    assert all(t == n * PERIOD for n, t in seen[12:])  # back on the original schedule
    assert len(set(times)) == len(times)  # never two ticks at the same instant


async def test_an_exact_200_ms_stall() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)
    seen = await run_consumer(clock, pacer, [0.0] * 10 + [0.200] + [0.0] * 3, until=1.0)
    assert [n for n, _ in seen] == list(range(11)) + [20, 21, 22]
    assert pacer.skipped == 9
    assert pacer.late_ticks <= 1  # tick 20 is due exactly when the stall ends


@pytest.mark.parametrize(
    ("stall", "ticks_after", "late", "skipped"),
    [
        (0.030, [11, 12, 13], 1, 0),  # 10 ms behind: tick 11 at once, then on time
        (0.050, [11, 12, 13], 2, 0),  # 30 ms behind: ticks 11 and 12 back to back
        (0.065, [13, 14, 15], 1, 2),  # 45 ms behind > 40 ms: skip to the tick due now
    ],
)
async def test_short_hiccups_are_absorbed_within_max_lag(
    stall: float, ticks_after: list[int], late: int, skipped: int
) -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)
    seen = await run_consumer(clock, pacer, [0.0] * 10 + [stall] + [0.0] * 3, until=1.0)
    assert [n for n, _ in seen] == list(range(11)) + ticks_after
    assert (pacer.late_ticks, pacer.skipped) == (late, skipped)


async def test_max_lag_zero_never_bursts() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock, max_lag=0)
    seen = await run_consumer(clock, pacer, [0.0] * 10 + [0.050] + [0.0] * 3, until=1.0)
    assert [n for n, _ in seen] == list(range(11)) + [12, 13, 14]
    assert (pacer.late_ticks, pacer.skipped) == (1, 1)


@settings(max_examples=60, deadline=None)
@given(
    work=st.lists(st.floats(0.0, 0.2, allow_nan=False), min_size=1, max_size=60),
    max_lag=st.integers(0, 5),
    period=st.sampled_from([0.010, 0.020, 0.030]),
)
def test_schedule_invariants(work: list[float], max_lag: int, period: float) -> None:
    async def scenario() -> tuple[Pacer, list[tuple[int, float]]]:
        clock = VirtualClock()
        pacer = Pacer(clock, period, max_lag=max_lag)
        seen = await run_consumer(clock, pacer, work, until=sum(work) + len(work) * period + 1)
        return pacer, seen

    pacer, seen = asyncio.run(scenario())
    ticks = [n for n, _ in seen]
    assert len(ticks) == len(work)
    assert ticks[0] == 0
    assert all(b > a for a, b in zip(ticks, ticks[1:], strict=False))
    assert len(ticks) + pacer.skipped == ticks[-1] + 1  # every tick is handed out or counted
    for n, t in seen:
        due = n * period
        assert t >= due - 1e-9 * period  # never early
        # never later than the allowed lag, or (after a skip) less than a period late
        assert t - due <= max_lag * period + 1e-9 or t - due < period
    on_time = sum(1 for n, t in seen if t == n * period)
    assert on_time + pacer.late_ticks == len(seen)


async def test_explicit_start() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock, start=1.0)
    assert pacer.deadline(3) == 1.0 + 3 * PERIOD
    seen = await run_consumer(clock, pacer, [0.0, 0.0], until=2.0)
    assert seen == [(0, 1.0), (1, 1.0 + PERIOD)]


async def test_start_defaults_to_the_first_wait() -> None:
    clock = VirtualClock(start=3.0)
    pacer = Pacer(clock)
    assert pacer.start is None
    with pytest.raises(RuntimeError, match="has not started"):
        pacer.deadline(0)
    assert await pacer.wait_next() == 0  # due at once
    assert pacer.start == 3.0
    assert pacer.next_tick == 1


async def test_reset_starts_a_new_schedule() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)
    await run_consumer(clock, pacer, [0.0] * 5, until=1.0)
    pacer.reset()
    seen = await run_consumer(clock, pacer, [0.0] * 3, until=1.0)
    assert seen == [(0, 1.0), (1, 1.0 + PERIOD), (2, 1.0 + 2 * PERIOD)]


async def test_a_cancelled_wait_loses_no_tick() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)
    assert await pacer.wait_next() == 0
    waiter = asyncio.create_task(pacer.wait_next())
    await clock.advance(0.010)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pacer.next_tick == 1
    nxt = asyncio.create_task(pacer.wait_next())
    await clock.advance(0.010)
    assert await nxt == 1
    assert clock.now() == pytest.approx(PERIOD)


@pytest.mark.parametrize("period", [0.0, -0.02, math.nan, math.inf])
def test_bad_period(period: float) -> None:
    with pytest.raises(ValueError, match="period must be a positive number of seconds"):
        Pacer(VirtualClock(), period)


def test_bad_max_lag_and_start() -> None:
    with pytest.raises(ValueError, match="max_lag must be >= 0 periods, got -1"):
        Pacer(VirtualClock(), max_lag=-1)
    with pytest.raises(ValueError, match="start must be a finite time"):
        Pacer(VirtualClock(), start=math.nan)


async def test_runs_on_the_real_clock() -> None:
    pacer = Pacer(MonotonicClock(), period=0.001)
    assert [await pacer.wait_next() for _ in range(3)][0] == 0
    assert pacer.next_tick + pacer.skipped >= 3
