"""Keypad entry: digits collected into one entry, ended by '#' or a pause between digits; an
entry keyed in a sensitive step (a flow slot marked `sensitive`) is shown only masked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from agents.sensitive import masked
from media.clock import Clock

DTMF_INTERDIGIT_S = 1.5

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class DtmfCollector:
    """Collects a call's DTMF digits; `on_entry` gets them ("1234") once the caller pressed
    '#' (not included) or paused `interdigit_s`. The pause timer runs on the injected clock, as
    a task started through the call's `spawn` (so the call owns and cancels it)."""

    def __init__(
        self,
        clock: Clock,
        spawn: Spawn,
        on_entry: Callable[[str], None],
        interdigit_s: float = DTMF_INTERDIGIT_S,
    ) -> None:
        self._clock = clock
        self._spawn = spawn
        self._on_entry = on_entry
        self._interdigit_s = interdigit_s
        self._digits: list[str] = []
        self._timer: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        """Digits pressed and not yet handed on."""
        return bool(self._digits)

    def press(self, digit: str) -> None:
        self._digits.append(digit)
        self._stop_timer()
        if digit == "#":
            self._flush()
        else:
            self._timer = self._spawn(self._pause(), "dtmf")

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _pause(self) -> None:
        await self._clock.sleep_until(self._clock.now() + self._interdigit_s)
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        entry = "".join(self._digits).rstrip("#")
        self._digits.clear()
        if entry:
            self._on_entry(entry)


def keys_shown(digits: str, *, sensitive: bool) -> str:
    """An entry as the call's events, history and logs may show it: as keyed, or, keyed in a
    sensitive step, its placeholder (`[CARD]` for a card number, else `[REDACTED]`). The agent
    alone gets the digits."""
    return masked(digits) if sensitive else digits
