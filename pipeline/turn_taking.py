"""What the call session remembers between turns to take turns well: the reply started while
the caller paused (held until the endpoint confirms it), the last endpoint (so speech that
resumes right after it takes the turn back), and the caller's silence (reprompts)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from agents.spec import TurnSettings
from media.clock import Clock
from pipeline.actions import ReplyWatch
from pipeline.response import Response
from pipeline.stt import SttStream

CONTINUATION_S = 1.5
"""Speech resuming this soon after an endpoint continues the turn (the endpoint was early)..."""
CONTINUATION_HEARD_WORDS = 2
"""...if the caller heard at most this much of the reply (a false start, dropped from history)."""


@dataclasses.dataclass
class HeldReply:
    """A reply started when the caller paused, held until the endpoint confirms the turn."""

    stream: SttStream
    """The utterance whose pause it answers."""
    text: str
    """The transcript it answers; the final transcript must match for it to play."""
    checkpoint: object
    """The agent's state from before the reply (restored when the reply is dropped)."""
    response: Response
    task: asyncio.Task[None]
    release: asyncio.Event
    watch: ReplyWatch


@dataclasses.dataclass
class LastEndpoint:
    """The previous turn's endpoint: its audio, when it was decided, how long the history was
    and the agent's state then, so a turn taken back can be undone and transcribed whole."""

    audio: np.ndarray[Any, np.dtype[np.int16]]
    at: float
    history_len: int
    agent_state: object

    def continued_by(self, now: float, heard_text: str) -> bool:
        """Speech starting at `now`, with `heard_text` of the reply played, continues the turn
        ("Hi, ... I'd like to book"): the endpoint was early."""
        return (
            now - self.at <= CONTINUATION_S and len(heard_text.split()) <= CONTINUATION_HEARD_WORDS
        )


class NoInputTimer:
    """The caller's silence: after `no_input_s` of it (counted from `arm`, when the agent has
    finished speaking) `prompt(n)` asks the agent for its n-th reprompt in a row; once more
    than `max_no_input` went unanswered, `give_up()`. Caller words `reset` the count."""

    def __init__(
        self,
        settings: TurnSettings,
        clock: Clock,
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]],
        *,
        still_silent: Callable[[], bool],
        prompt: Callable[[int], None],
        give_up: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._spawn = spawn
        self._still_silent = still_silent
        self._prompt = prompt
        self._give_up = give_up
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    def arm(self) -> None:
        self.cancel()
        self._task = self._spawn(self._wait(), "no-input")

    def cancel(self) -> None:
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def reset(self) -> None:
        self.count = 0

    async def _wait(self) -> None:
        await self._clock.sleep_until(self._clock.now() + self._settings.no_input_s)
        if not self._still_silent():
            return
        self.count += 1
        if self.count > self._settings.max_no_input:
            self._give_up()
        else:
            self._prompt(self.count)
