"""The virtual clock (and a smoke test of the real one)."""

from __future__ import annotations

import asyncio

import pytest

from media.clock import Clock, MonotonicClock, VirtualClock


async def test_time_only_moves_when_told() -> None:
    clock = VirtualClock(start=10.0)
    assert clock.now() == 10.0
    await asyncio.sleep(0)
    assert clock.now() == 10.0
    await clock.advance(0.5)
    assert clock.now() == 10.5
    await clock.advance(0)
    assert clock.now() == 10.5


async def test_sleepers_wake_at_their_deadlines_in_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((name, clock.now()))

    tasks = [
        asyncio.create_task(sleeper(name, deadline))
        for name, deadline in [("c", 0.3), ("a", 0.1), ("b", 0.2), ("a2", 0.1), ("late", 5.0)]
    ]
    await clock.advance(1.0)
    assert woke == [("a", 0.1), ("a2", 0.1), ("b", 0.2), ("c", 0.3)]
    assert clock.now() == 1.0
    assert not tasks[-1].done()
    await clock.advance(4.0)
    assert woke[-1] == ("late", 5.0)
    await asyncio.gather(*tasks)


async def test_a_deadline_in_the_past_returns_at_once() -> None:
    clock = VirtualClock(start=2.0)
    await clock.sleep_until(1.0)
    await clock.sleep_until(2.0)
    assert clock.now() == 2.0


async def test_repeated_sleeps_inside_one_advance_all_happen() -> None:
    clock = VirtualClock()
    times: list[float] = []

    async def ticker() -> None:
        for k in range(1, 11):
            await clock.sleep_until(k * 0.01)
            times.append(clock.now())

    task = asyncio.create_task(ticker())
    await clock.advance(0.1)
    await task
    assert times == [k * 0.01 for k in range(1, 11)]


async def test_a_cancelled_sleeper_does_not_disturb_others() -> None:
    clock = VirtualClock()
    cancelled = asyncio.create_task(clock.sleep_until(0.1))
    other = asyncio.create_task(clock.sleep_until(0.2))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await clock.advance(0.3)
    assert other.done()
    await other


async def test_time_never_goes_backwards() -> None:
    clock = VirtualClock(start=1.0)
    with pytest.raises(ValueError, match="only moves forward"):
        await clock.advance(-0.1)
    assert clock.now() == 1.0


async def test_monotonic_clock() -> None:
    clock: Clock = MonotonicClock()
    first = clock.now()
    await clock.sleep_until(first - 1.0)  # in the past: returns at once
    assert clock.now() >= first


def test_virtual_clock_is_a_clock() -> None:
    clock: Clock = VirtualClock()
    assert clock.now() == 0.0
