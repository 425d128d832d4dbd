"""One call the dialler placed for a campaign contact, followed to its disposition (sans-IO).

The node tells the dialler three things about an outbound call, in any order: the dial's own
result (`Dialer.dial` returned: the far end is being called; or it raised), the call's events
while it ran (`LiveCalls`: only an answered call has any; `AmdDetected` says person or
machine, `CallEnded` how it ended), and its release (the admission given back: the call is
over, whether it was answered or not). A call refused before it was answered says why as one
of the SIP dialer's outcomes (`voicenode.sip_listener.OUTCOMES`: busy, no_answer,
unreachable, refused).

`disposition_of` maps that to the attempt's disposition:

| what happened | disposition |
| --- | --- |
| never answered: busy | busy |
| never answered: no_answer (a timeout, 408/480/487) | no_answer |
| never answered: anything else (unreachable, refused, no reason) | failed |
| answered, ended `voicemail` (the message was left) | voicemail_left |
| answered, ended `machine`, or AMD said machine | answered_machine |
| answered otherwise (a person, or AMD unsure or off) | answered_human |
"""

from __future__ import annotations

from dataclasses import dataclass

from control_api.campaigns.lifecycle import Disposition
from control_api.campaigns.model import Retry
from pipeline.events import AmdDetected, CallEnded, CallEvent

_UNANSWERED = {"busy": Disposition.BUSY, "no_answer": Disposition.NO_ANSWER}


def disposition_of(
    *, answered: bool, ended: str | None, amd: str | None, refusal: str | None
) -> Disposition:
    """The attempt's disposition (see the module's table)."""
    if not answered:
        return _UNANSWERED.get(refusal or "", Disposition.FAILED)
    if ended == "voicemail":
        return Disposition.VOICEMAIL_LEFT
    if ended == "machine" or amd == "machine":
        return Disposition.ANSWERED_MACHINE
    return Disposition.ANSWERED_HUMAN


@dataclass(eq=False, kw_only=True)
class DialledCall:
    """What the dialler knows of one of its calls."""

    call_id: str
    tenant_id: str
    campaign_id: str
    contact_id: int
    retry: Retry
    answered: bool = False
    """The call reached the conversation (it has events, and a call record)."""
    amd: str | None = None
    ended: str | None = None
    refusal: str | None = None
    dialled: bool = False
    """`Dialer.dial` returned: the far end was being called."""
    released: bool = False
    """The node gave the call's admission back: it is over."""
    finishing: bool = False

    def note(self, event: CallEvent) -> None:
        """One of the call's events (from `LiveCalls`)."""
        self.answered = True
        if isinstance(event, AmdDetected):
            self.amd = event.result
        elif isinstance(event, CallEnded) and self.ended is None:
            self.ended = event.reason

    @property
    def over(self) -> bool:
        """The dial returned and the call has ended since (its disposition is known)."""
        return self.dialled and self.released

    def disposition(self) -> Disposition:
        return disposition_of(
            answered=self.answered, ended=self.ended, amd=self.amd, refusal=self.refusal
        )

    @property
    def record(self) -> str | None:
        """The call record the attempt links to: the call's id once it was answered."""
        return self.call_id if self.answered else None
