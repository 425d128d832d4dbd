"""Speculative replies: a reply the session starts when the caller pauses, before their turn is
surely over (`Agent.may_speculate`), and holds until the endpoint confirms it.

The reply's runner (`pipeline/response.py`) runs the agent's `respond` inside `held(release)`;
the agent asks whether its reply is still held (`pending()`) and awaits `confirmed()` before
anything with effects outside the reply (a tool call with side effects). `confirmed()` returns
once the session releases the reply (at once when the reply is not held); when the caller goes
on, the session cancels the reply instead, so the effect never happens.

`SpeculationLedger` counts an LLM agent's speculative replies (`voicenode_llm_speculative_total`
by outcome, used or dropped) and the tokens of the dropped ones
(`voicenode_llm_speculative_wasted_tokens_total`: streamed deltas, one per token from
OpenAI-compatible servers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from contextvars import ContextVar

from prometheus_client import Counter

SPECULATIVE_REPLIES = Counter(
    "voicenode_llm_speculative",
    "LLM replies started before the caller's turn was surely over, by what became of them",
    ["outcome"],
)
WASTED_TOKENS = Counter(
    "voicenode_llm_speculative_wasted_tokens",
    "Tokens an LLM generated for speculative replies that were dropped (the caller went on)",
)
for _outcome in ("used", "dropped"):
    SPECULATIVE_REPLIES.labels(_outcome)

_RELEASE: ContextVar[asyncio.Event | None] = ContextVar("voicenode_reply_release", default=None)


@contextlib.contextmanager
def held(release: asyncio.Event | None) -> Iterator[None]:
    """Run the agent inside: with `release`, its reply is held until `release` is set."""
    token = _RELEASE.set(release)
    try:
        yield
    finally:
        _RELEASE.reset(token)


def release_event() -> asyncio.Event | None:
    """The current reply's release (set once the endpoint confirmed it); None: not held."""
    return _RELEASE.get()


def pending() -> bool:
    """The current reply is held: the endpoint has not confirmed it yet."""
    release = _RELEASE.get()
    return release is not None and not release.is_set()


async def confirmed() -> None:
    """Return once the current reply may have effects: at once unless it is held, else when
    the session releases it (a dropped reply is cancelled here)."""
    release = _RELEASE.get()
    if release is not None and not release.is_set():
        await release.wait()


@dataclasses.dataclass(slots=True, eq=False)
class Speculation:
    """One speculative reply of an agent: its release and the tokens generated for it."""

    release: asyncio.Event
    tokens: int = 0
    finished: bool = False
    """The agent's `respond` ran to its end (the reply's fate may still be open)."""


class SpeculationLedger:
    """One agent's speculative replies, counted once their fate is known.

    A reply released by the session is used; one cancelled before its release is dropped. A
    reply the agent finished before the endpoint stays open until `settle`: the session drops
    it by cancelling its task and `restore`-ing the agent (the agent settles there), and the
    next reply and `aclose` settle whatever is left.
    """

    def __init__(self) -> None:
        self._open: list[Speculation] = []

    def begin(self) -> Speculation | None:
        """A reply starts: its record when the reply is held (not yet released), else None."""
        self.settle()
        release = release_event()
        if release is None or release.is_set():
            return None
        speculation = Speculation(release)
        self._open.append(speculation)
        return speculation

    def end(self, speculation: Speculation | None, *, finished: bool) -> None:
        """The agent's `respond` ended: ran to its end (`finished`), or was cancelled or closed
        (barge-in, the caller went on)."""
        if speculation is None:
            return
        speculation.finished = True
        if finished and not speculation.release.is_set():
            return  # the endpoint has not decided yet
        self._open.remove(speculation)
        self._count(speculation)

    def settle(self) -> None:
        """Count every finished reply: released ones as used, the others as dropped."""
        for speculation in [s for s in self._open if s.finished]:
            self._open.remove(speculation)
            self._count(speculation)

    @staticmethod
    def _count(speculation: Speculation) -> None:
        if speculation.release.is_set():
            SPECULATIVE_REPLIES.labels("used").inc()
        else:
            SPECULATIVE_REPLIES.labels("dropped").inc()
            WASTED_TOKENS.inc(speculation.tokens)
