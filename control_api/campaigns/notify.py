"""A campaign's events into the outbox, and the node's dialler told of a lifecycle move.

The events (`control_api.analytics.events`: `campaign.started|paused|completed`,
`contact.attempted`) are written with `write_events` in the same transaction as the change
they report, so an event is in the outbox exactly when its change is in the store, and the
relay delivers them like every other event (webhooks, the Redis Stream). They are not a call's
events: each has an id of its own as `call_id` and `seq` 0; a contact's attempt id is
deterministic (`att_<campaign>_<contact>_<attempt>`), so the same attempt is never reported
twice. Never a number: contacts are named by their id.

`Bell` is what the control API rings after a move (start, pause, resume, cancel): a host that
runs a dialler (`voicenode.node.Node`) looks at its campaigns again at once instead of at its
next idle wake.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from control_api.analytics.events import (
    AnalyticsEvent,
    CampaignCompletedEvent,
    CampaignPausedEvent,
    CampaignStartedEvent,
    ContactAttemptedEvent,
    iso,
)
from control_api.analytics.outbox import write_events
from control_api.campaigns.lifecycle import Action, CampaignState, ContactState, Disposition


@runtime_checkable
class Bell(Protocol):
    """A host whose dialler can be told that campaigns changed."""

    def campaigns_changed(self) -> None: ...


def ring(host: object) -> None:
    """Tell `host`'s dialler (if it runs one) to look at its campaigns again."""
    if isinstance(host, Bell):
        host.campaigns_changed()


def _head(own_id: str, tenant_id: str, at: datetime) -> dict[str, Any]:
    return {"id": f"{own_id}:0", "call_id": own_id, "tenant_id": tenant_id, "seq": 0, "at": iso(at)}


def moved(
    tenant_id: str, campaign_id: str, action: Action, state: CampaignState, at: datetime
) -> AnalyticsEvent | None:
    """The event of a lifecycle move, if it has one (start, resume: started; pause: paused;
    complete, cancel: completed, with the state it ended in)."""
    head = _head(f"cmp_{secrets.token_hex(16)}", tenant_id, at)
    fields: dict[str, Any] = {"campaign_id": campaign_id, "state": state.value}
    match action:
        case Action.START | Action.RESUME:
            return CampaignStartedEvent(**head, **fields, resumed=action is Action.RESUME)
        case Action.PAUSE:
            return CampaignPausedEvent(**head, **fields)
        case Action.COMPLETE | Action.CANCEL:
            return CampaignCompletedEvent(**head, **fields)
    return None


def attempted(
    tenant_id: str,
    campaign_id: str,
    contact: ContactState,
    at: datetime,
    call_id: str | None = None,
) -> ContactAttemptedEvent:
    """The `contact.attempted` event of the attempt that left `contact` as it is (a
    do_not_call contact: attempt 0, no call)."""
    disposition = contact.disposition or Disposition.FAILED
    attempt = 0 if disposition is Disposition.DO_NOT_CALL else contact.attempts
    own_id = f"att_{campaign_id}_{contact.id}_{attempt}"
    eligible = contact.next_eligible_at
    return ContactAttemptedEvent(
        **_head(own_id, tenant_id, at),
        campaign_id=campaign_id,
        contact_id=contact.id,
        attempt=attempt,
        disposition=disposition.value,
        attempt_call_id=call_id,
        final=contact.final,
        next_eligible_at=iso(eligible) if eligible is not None else None,
    )


async def emit(session: AsyncSession, events: Sequence[AnalyticsEvent | None], node: str) -> None:
    """Add `events` to the outbox in the session's transaction (None: nothing)."""
    present = [event for event in events if event is not None]
    if present:
        await write_events(session, present, node)
