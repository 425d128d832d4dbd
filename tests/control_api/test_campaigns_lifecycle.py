"""A campaign's lifecycle and a contact's retry rules (`control_api.campaigns.lifecycle`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from control_api.campaigns.lifecycle import (
    Action,
    CampaignState,
    ContactState,
    Disposition,
    TransitionRefused,
    is_terminal,
    mark_do_not_call,
    record_attempt,
    transition,
)
from control_api.campaigns.model import Retry

S = CampaignState
ALLOWED = {
    (S.DRAFT, Action.START): S.RUNNING,
    (S.RUNNING, Action.PAUSE): S.PAUSED,
    (S.PAUSED, Action.RESUME): S.RUNNING,
    (S.RUNNING, Action.COMPLETE): S.COMPLETED,
    (S.DRAFT, Action.CANCEL): S.CANCELLED,
    (S.RUNNING, Action.CANCEL): S.CANCELLED,
    (S.PAUSED, Action.CANCEL): S.CANCELLED,
}
T0 = datetime(2027, 6, 7, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(("state", "action"), list(product(CampaignState, Action)))
def test_every_move_is_allowed_or_refused(state: CampaignState, action: Action) -> None:
    if (state, action) in ALLOWED:
        assert transition(state, action) is ALLOWED[(state, action)]
    else:
        with pytest.raises(TransitionRefused, match=f"cannot {action.value} a {state.value}"):
            transition(state, action)


def test_completed_and_cancelled_are_terminal() -> None:
    assert {s for s in CampaignState if is_terminal(s)} == {S.COMPLETED, S.CANCELLED}


def contact() -> ContactState:
    return ContactState(id=1, number="+14155550100")


def test_a_retried_outcome_waits_the_backoff() -> None:
    retry = Retry(max_attempts=3, backoff_minutes=30, on=("busy",))
    after = record_attempt(contact(), Disposition.BUSY, T0, retry)
    assert (after.attempts, after.final, after.disposition) == (1, False, Disposition.BUSY)
    assert after.last_attempt_at == T0
    assert after.next_eligible_at == T0 + timedelta(minutes=30)


def test_the_last_attempt_is_final_even_when_the_outcome_retries() -> None:
    retry = Retry(max_attempts=2, backoff_minutes=5, on=("no_answer",))
    first = record_attempt(contact(), Disposition.NO_ANSWER, T0, retry)
    second = record_attempt(first, Disposition.NO_ANSWER, T0 + timedelta(minutes=6), retry)
    assert not first.final
    assert second.final and second.attempts == 2 and second.next_eligible_at is None


@pytest.mark.parametrize(
    ("disposition", "on", "again"),
    [
        (Disposition.BUSY, ("busy",), True),
        (Disposition.BUSY, ("no_answer",), False),
        (Disposition.NO_ANSWER, ("no_answer",), True),
        (Disposition.FAILED, ("failed",), True),
        (Disposition.FAILED, (), False),
        (Disposition.ANSWERED_MACHINE, ("machine",), True),
        (Disposition.ANSWERED_MACHINE, ("busy", "no_answer", "failed"), False),
        (Disposition.ANSWERED_HUMAN, ("busy", "no_answer", "failed", "machine"), False),
        (Disposition.VOICEMAIL_LEFT, ("busy", "no_answer", "failed", "machine"), False),
        (Disposition.DO_NOT_CALL, ("busy", "no_answer", "failed", "machine"), False),
    ],
)
def test_which_outcomes_retry(disposition: Disposition, on: tuple[str, ...], again: bool) -> None:
    retry = Retry(max_attempts=5, backoff_minutes=1, on=on)  # type: ignore[arg-type]
    assert record_attempt(contact(), disposition, T0, retry).final is not again


def test_do_not_call_ends_the_contact_without_an_attempt() -> None:
    barred = mark_do_not_call(contact())
    assert barred.final and barred.disposition is Disposition.DO_NOT_CALL
    assert barred.attempts == 0
