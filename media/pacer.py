"""A pacing clock: ticks on an absolute schedule (one per 20 ms frame by default).

Tick `n` is due at `start + n * period`, computed from `n` every time, so rounding never
accumulates and a late wake-up never shifts later ticks. A consumer that falls behind gets the
overdue ticks at once, back to back, as long as it is at most `max_lag` periods behind (a short
hiccup is absorbed without losing frames). Further behind than that, the pacer skips ahead to
the tick that is due now instead of bursting every missed tick; the missed ticks are counted
in `skipped`. Every tick handed out after its deadline counts in `late_ticks`.

Use it as an async iterator, or call `wait_next()` directly::

    pacer = Pacer(clock)
    async for n in pacer:          # n = 0, 1, 2, ... (numbers jump after a skip)
        await sink.send(frame_for(n))

Sans-IO in spirit: all time comes from the injected `Clock`, so tests drive it with
`VirtualClock`.
"""

from __future__ import annotations

import math
from typing import Final

from media.clock import Clock

__all__ = ["Pacer"]

# A tick whose deadline is within this fraction of a period of "now" counts as due now when
# skipping ahead, so float rounding in (now - start) / period cannot cost a whole period.
_SLOT_EPSILON: Final = 1e-9


class Pacer:
    """Ticks every `period` seconds of `clock`, on the schedule `start + n * period`.

    `start` defaults to the clock's time at the first `wait_next()` (tick 0 is then due at
    once). `max_lag` (in periods, default 2 = 40 ms at 20 ms frames) is how far behind the
    consumer may fall and still get every tick; it bounds a catch-up burst to `max_lag` ticks.

    Attributes (read-only for users): `late_ticks` counts ticks returned after their deadline;
    `skipped` counts ticks never returned because the consumer was too far behind.
    """

    def __init__(
        self,
        clock: Clock,
        period: float = 0.020,
        *,
        max_lag: int = 2,
        start: float | None = None,
    ) -> None:
        if not (math.isfinite(period) and period > 0):
            raise ValueError(f"pacer period must be a positive number of seconds, got {period}")
        if max_lag < 0:
            raise ValueError(f"pacer max_lag must be >= 0 periods, got {max_lag}")
        if start is not None and not math.isfinite(start):
            raise ValueError(f"pacer start must be a finite time, got {start}")
        self.clock: Final = clock
        self.period: Final = period
        self.max_lag: Final = max_lag
        self._start = start
        self._next = 0
        self.late_ticks = 0
        self.skipped = 0

    @property
    def start(self) -> float | None:
        """When tick 0 is (was) due; None until the first tick if not given."""
        return self._start

    @property
    def next_tick(self) -> int:
        """The number of the tick the next `wait_next()` aims for (before any skip)."""
        return self._next

    def deadline(self, n: int) -> float:
        """When tick `n` is due."""
        if self._start is None:
            raise RuntimeError("the pacer has not started: no tick has been awaited yet")
        return self._start + n * self.period

    def reset(self, start: float | None = None) -> None:
        """Start a new schedule: the next tick is tick 0, due at `start` (default: then)."""
        self._start = start
        self._next = 0

    async def wait_next(self) -> int:
        """Wait for the next tick and return its number.

        Cancelling the wait loses nothing: the same tick is waited for by the next call.
        """
        now = self.clock.now()
        if self._start is None:
            self._start = now
        n = self._next
        deadline = self.deadline(n)
        if now > deadline:
            if now - deadline > self.max_lag * self.period:
                due = int((now - self._start) / self.period + _SLOT_EPSILON)
                if due > n:
                    self.skipped += due - n
                    n = due
                    deadline = self.deadline(n)
            if now > deadline:
                self.late_ticks += 1
        if deadline > now:
            await self.clock.sleep_until(deadline)
        self._next = n + 1
        return n

    def __aiter__(self) -> Pacer:
        return self

    async def __anext__(self) -> int:
        return await self.wait_next()

    def ticks(self) -> Pacer:
        """The pacer as an endless async iterator of tick numbers (`async for n in ...`)."""
        return self
