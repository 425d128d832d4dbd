"""Failed-authentication limits per source address (sans-IO: fed the time by its caller).

A source that presented `max_failures` wrong keys within `window_s` seconds is refused (429 with
Retry-After) until its oldest failure in the window ages out, whatever key it presents then —
a correct guess during the lock-out is worth nothing. At most `max_sources` addresses are
tracked (the least recently failing are forgotten first), so a spray of addresses cannot grow
memory without bound.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import Final

MAX_SOURCES: Final = 10_000


class FailedAuth:
    def __init__(self, max_failures: int, window_s: float, max_sources: int = MAX_SOURCES) -> None:
        if max_failures < 1 or window_s <= 0 or max_sources < 1:
            raise ValueError("max_failures, window_s and max_sources must be positive")
        self._max = max_failures
        self._window_s = window_s
        self._max_sources = max_sources
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, source: str, now: float) -> deque[float] | None:
        times = self._failures.get(source)
        if times is None:
            return None
        while times and times[0] <= now - self._window_s:
            times.popleft()
        if not times:
            del self._failures[source]
            return None
        return times

    def retry_after(self, source: str, now: float) -> int | None:
        """Whole seconds until `source` may try again; None: it may try now."""
        times = self._recent(source, now)
        if times is None or len(times) < self._max:
            return None
        return max(1, math.ceil(times[0] + self._window_s - now))

    def failed(self, source: str, now: float) -> None:
        """`source` presented a wrong key at `now`."""
        times = self._recent(source, now)
        if times is None:
            times = self._failures[source] = deque(maxlen=self._max)
            while len(self._failures) > self._max_sources:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(source)
        times.append(now)
