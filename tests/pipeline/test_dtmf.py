"""Keypad entry collection on the virtual clock, and the early-endpoint rule of turn taking."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import numpy as np

from media.clock import VirtualClock
from pipeline.dtmf import DTMF_INTERDIGIT_S, DtmfCollector
from pipeline.turn_taking import CONTINUATION_S, LastEndpoint


class Entries:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.got: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.keys = DtmfCollector(self.clock, self.spawn, self.got.append)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.append(task)
        return task

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_hash_ends_the_entry_at_once_without_the_hash() -> None:
    e = Entries()
    for digit in "12#":
        e.keys.press(digit)
    assert e.got == ["12"] and not e.keys.pending
    await e.clock.advance(DTMF_INTERDIGIT_S * 2)
    assert e.got == ["12"]  # the cancelled pause timer handed nothing on
    await e.close()


async def test_a_pause_between_digits_ends_the_entry() -> None:
    e = Entries()
    e.keys.press("4")
    await e.clock.advance(DTMF_INTERDIGIT_S - 0.1)
    e.keys.press("2")  # within the pause: the same entry, the timer restarts
    await e.clock.advance(DTMF_INTERDIGIT_S - 0.1)
    assert e.got == [] and e.keys.pending
    await e.clock.advance(0.2)
    assert e.got == ["42"] and not e.keys.pending
    e.keys.press("*")
    await e.clock.advance(DTMF_INTERDIGIT_S)
    assert e.got == ["42", "*"]
    await e.close()


async def test_a_lone_hash_is_no_entry() -> None:
    e = Entries()
    e.keys.press("#")
    await e.clock.advance(DTMF_INTERDIGIT_S * 2)
    assert e.got == []
    await e.close()


def test_speech_soon_after_an_endpoint_with_little_heard_continues_the_turn() -> None:
    endpoint = LastEndpoint(np.zeros(160, np.int16), at=10.0, history_len=2, agent_state=None)
    assert endpoint.continued_by(10.0 + CONTINUATION_S, "")
    assert endpoint.continued_by(10.5, "Sure, what")
    assert not endpoint.continued_by(10.5, "Sure, what day")  # the caller heard the reply
    assert not endpoint.continued_by(10.0 + CONTINUATION_S + 0.01, "")  # a new turn
