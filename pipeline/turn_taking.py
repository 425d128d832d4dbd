"""What the call session remembers between turns to take turns well: the reply started while
the caller paused (held until the endpoint confirms it), and the last endpoint (so speech that
resumes right after it takes the turn back)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np

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
