"""Closing actions (hang-up, transfer) the caller can still stop.

Ending or transferring a call is the one thing the node cannot take back, and it acts on what it
heard. So an `EndCall` or `Transfer` the agent asks for waits: the agent says its closing line,
then `grace_ms` (`turn.closing_grace_ms`, ~1.5 s) more pass before the call is hung up or handed
to SIP/AMI. If the caller starts speaking during the line or the grace period, the action waits
for what they said: words cancel it (the session cancels the reply, the agent goes back to where
it was before the reply, and the conversation goes on with that line); speech without words
(a cough, noise) lets it go ahead. Over a closing line even a short "wait" is transcribed (it
is not taken for a backchannel), and keys the caller is still pressing hold the action too.

`ClosingGrace` is the sans-IO core (events in, a decision and a wake-up time out);
`ClosingActions` is the call's driver on the injected clock, and counts what was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Literal

from prometheus_client import Counter

from agents.base import Agent, EndCall, Transfer
from media.clock import Clock

ClosingKind = Literal["hangup", "transfer"]

CLOSING_CANCELLED = Counter(
    "voicenode_closing_actions_cancelled_total",
    "Hang-ups and transfers the agent asked for that the caller stopped by speaking",
    ["action"],
)
for _kind in ("hangup", "transfer"):
    CLOSING_CANCELLED.labels(_kind)


def closing_kind(action: object) -> ClosingKind | None:
    if isinstance(action, EndCall):
        return "hangup"
    if isinstance(action, Transfer):
        return "transfer"
    return None


@dataclasses.dataclass
class ClosingGrace:
    """When a closing action may go ahead: `grace_s` after its line was played, and not while
    the caller's speech is still unresolved (`caller_started` … `caller_done`)."""

    grace_s: float
    busy: bool = False
    """The caller started speaking and it is not yet known whether they said anything."""
    deadline: float | None = None
    """End of the grace period (set once the closing line has been played)."""

    def line_played(self, now: float) -> None:
        self.deadline = now + self.grace_s

    def caller_started(self) -> None:
        self.busy = True

    def caller_done(self) -> None:
        self.busy = False

    def wake_at(self, now: float, *, keys: bool = False) -> float | None:
        """None: go ahead now. Else when to look again (`inf`: at the next caller event).
        `keys`: the caller is pressing keys (an entry not yet complete)."""
        if self.deadline is None or self.busy or keys:
            return float("inf")
        return None if now >= self.deadline else self.deadline


class ClosingActions:
    """One call's closing actions. The session tells it about the caller's speech and which
    reply is current; replies `hold` each closing action before carrying it out, and when the
    session cancels a reply whose closing action was still held, `reply_cancelled` counts it
    and takes the agent back to before that reply."""

    def __init__(
        self, grace_ms: int, clock: Clock, log: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        self._clock = clock
        self._log = log
        self._grace = ClosingGrace(grace_ms / 1000)
        self._changed = asyncio.Event()
        self.keys_pending: Callable[[], bool] = lambda: False
        """Whether the caller is in the middle of a keypad entry (its end cancels the reply)."""
        self.current: PendingClose | None = None
        """The current reply's closing action, from when the agent asks for it until it is
        carried out."""

    @property
    def pending(self) -> bool:
        return self.current is not None and self.current.kind is not None

    def caller_started(self) -> None:
        self._grace.caller_started()
        self._changed.set()

    def caller_done(self) -> None:
        self._grace.caller_done()
        self._changed.set()

    def reply(self, pending: PendingClose | None) -> None:
        """The reply that now plays (None: none)."""
        self.current = pending

    async def hold(self) -> None:
        """Return once the closing line has had its grace period and the caller said nothing;
        cancelled with the reply when they did."""
        self._grace.line_played(self._clock.now())
        while (
            wake := self._grace.wake_at(self._clock.now(), keys=self.keys_pending())
        ) is not None:
            await self._changed_or(wake)

    async def _changed_or(self, wake: float) -> None:
        """Until the caller's speech changes, or `wake` on the clock (`inf`: never)."""
        self._changed.clear()
        changed = asyncio.ensure_future(self._changed.wait())
        timer = asyncio.ensure_future(self._clock.sleep_until(wake)) if wake < 1e18 else None
        waits = [f for f in (changed, timer) if f is not None]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in waits:
                if not fut.done():
                    fut.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fut

    def checkpoint(self, agent: Agent) -> object:
        """The agent's state for a turn that starts now: from before the current reply when
        that reply holds a closing action (the turn may call it off), else as it is."""
        if self.current is not None and self.current.kind is not None:
            return self.current.checkpoint
        return agent.checkpoint()

    def reply_cancelled(self, agent: Agent) -> None:
        """The current reply was cancelled (the caller spoke or pressed keys): a closing action
        it still held is cancelled too."""
        pending, self.current = self.current, None
        if pending is None or pending.kind is None:
            return
        CLOSING_CANCELLED.labels(pending.kind).inc()
        self._log.info("closing action cancelled by the caller", extra={"action": pending.kind})
        agent.restore(pending.checkpoint)


@dataclasses.dataclass
class PendingClose:
    """One reply's closing action, as its watch sees it: `kind` is set when the agent asks for
    a hang-up or transfer and cleared once it has been carried out."""

    checkpoint: object
    """The agent's state from before the reply."""
    kind: ClosingKind | None = None
