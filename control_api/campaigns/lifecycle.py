"""A campaign's states, a contact's dispositions and the retry rules, as pure functions.

States: draft → running ⇄ paused, and from draft, running or paused to cancelled; a running
campaign whose contacts are all final completes. `transition(state, action)` is the one place
that says which moves exist; a refused move is a `TransitionRefused` (the API's 409). A draft
may have no contacts yet (they may come from CSV uploads); starting one is `NoContacts`, a
`TransitionRefused` of its own (`queries.move` counts them).

A contact's attempt ends in a `Disposition`. Whether it is tried again is the campaign's
`Retry`: an outcome named in `retry.on` (busy, no_answer, failed; machine for
answered_machine) is tried again `backoff_minutes` later, until `max_attempts` attempts have
been made. answered_human, voicemail_left and do_not_call always end the contact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

import msgspec

from control_api.campaigns.model import Retry
from core.errors import Refused


class CampaignState(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Action(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    COMPLETE = "complete"
    """The dialler's own move: every contact is final."""


class Disposition(StrEnum):
    ANSWERED_HUMAN = "answered_human"
    ANSWERED_MACHINE = "answered_machine"
    VOICEMAIL_LEFT = "voicemail_left"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    DO_NOT_CALL = "do_not_call"


class TransitionRefused(Refused):
    """A lifecycle move that does not exist from the campaign's state."""

    reason: str = "state"
    """Why, for the API's error body: the campaign's state does not allow the move."""


class NoContacts(TransitionRefused):
    """A start refused: the campaign has no contacts to call (nothing changes)."""

    reason = "no_contacts"


_MOVES: Final[dict[tuple[CampaignState, Action], CampaignState]] = {
    (CampaignState.DRAFT, Action.START): CampaignState.RUNNING,
    (CampaignState.RUNNING, Action.PAUSE): CampaignState.PAUSED,
    (CampaignState.PAUSED, Action.RESUME): CampaignState.RUNNING,
    (CampaignState.RUNNING, Action.COMPLETE): CampaignState.COMPLETED,
    (CampaignState.DRAFT, Action.CANCEL): CampaignState.CANCELLED,
    (CampaignState.RUNNING, Action.CANCEL): CampaignState.CANCELLED,
    (CampaignState.PAUSED, Action.CANCEL): CampaignState.CANCELLED,
}

_RETRY_NAME: Final[dict[Disposition, str]] = {
    Disposition.BUSY: "busy",
    Disposition.NO_ANSWER: "no_answer",
    Disposition.FAILED: "failed",
    Disposition.ANSWERED_MACHINE: "machine",
}
"""The outcomes a campaign may retry, by the name `retry.on` gives them."""


def transition(state: CampaignState, action: Action) -> CampaignState:
    """The state `action` leads to from `state`, or `TransitionRefused`."""
    after = _MOVES.get((state, action))
    if after is None:
        raise TransitionRefused(f"cannot {action.value} a {state.value} campaign")
    return after


def is_terminal(state: CampaignState) -> bool:
    """Whether no move leaves `state` (completed, cancelled)."""
    return not any(before is state for before, _ in _MOVES)


class ContactState(msgspec.Struct, frozen=True, kw_only=True):
    """Where one contact of a campaign stands: what the dialler decides on."""

    id: int
    number: str
    timezone: str | None = None
    attempts: int = 0
    disposition: Disposition | None = None
    """The last attempt's outcome (None before the first)."""
    last_attempt_at: datetime | None = None
    next_eligible_at: datetime | None = None
    """Not dialled before this instant (a retry's backoff); None: as soon as the window opens."""
    final: bool = False


def retries(retry: Retry, disposition: Disposition) -> bool:
    """Whether the campaign tries a contact again after this outcome (attempts aside)."""
    name = _RETRY_NAME.get(disposition)
    return name is not None and name in retry.on


def record_attempt(
    contact: ContactState, disposition: Disposition, at: datetime, retry: Retry
) -> ContactState:
    """The contact after an attempt that ended at `at` with `disposition`."""
    attempts = contact.attempts + 1
    again = retries(retry, disposition) and attempts < retry.max_attempts
    return msgspec.structs.replace(
        contact,
        attempts=attempts,
        disposition=disposition,
        last_attempt_at=at,
        next_eligible_at=at + timedelta(minutes=retry.backoff_minutes) if again else None,
        final=not again,
    )


def mark_do_not_call(contact: ContactState) -> ContactState:
    """The contact ended without a dial: its number is on the tenant's do-not-call list."""
    return msgspec.structs.replace(
        contact, disposition=Disposition.DO_NOT_CALL, next_eligible_at=None, final=True
    )
