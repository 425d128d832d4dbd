"""How a step's calls arrive: a burst (every call speaks each turn at the same instant, the
worst case) or staggered (calls started `stagger_s` apart, so their turns drift apart as real
traffic does).

`TurnGate` lines up a burst: a call ready to speak line `k` reports it (`arrive`) on every
20 ms tick until the gate opens `k`, which it does once every call still in the step is ready
for it; a call that ends (or never got through) `leave`s, so the others do not wait for it.
Pure bookkeeping, no I/O and no clock of its own: callers pass their clock's `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

ARRIVALS: Final = ("burst", "staggered")
"""The modes a step runs in; `--arrivals both` runs a series of each."""


def arrival_modes(choice: str) -> list[str]:
    """The series `--arrivals` asks for ("both": burst, then staggered)."""
    if choice == "both":
        return list(ARRIVALS)
    if choice not in ARRIVALS:
        raise ValueError(f"arrivals must be burst, staggered or both, got {choice!r}")
    return [choice]


class TurnGate:
    """Lines every participant speaks at once (a burst): line `k` opens when all the calls
    still running are ready for it."""

    def __init__(self, participants: Iterable[int]) -> None:
        self._active = set(participants)
        self._ready: dict[int, dict[int, float]] = {}
        self._opened: dict[int, float] = {}

    def arrive(self, call: int, line: int, now: float) -> float:
        """`call` is ready for `line` at `now` (repeat calls keep the first time); returns when
        it first became ready."""
        ready = self._ready.setdefault(line, {})
        first = ready.setdefault(call, now)
        self._check(line, now)
        return first

    def leave(self, call: int) -> None:
        """`call` ended: nobody waits for it any more."""
        self._active.discard(call)

    def is_open(self, line: int) -> bool:
        if line not in self._opened:
            self._check(line, None)
        return line in self._opened

    def opened_at(self, line: int) -> float | None:
        return self._opened.get(line)

    def _check(self, line: int, now: float | None) -> None:
        if line in self._opened:
            return
        ready = self._ready.get(line, {})
        if ready and self._active <= ready.keys():
            self._opened[line] = now if now is not None else max(ready.values())
