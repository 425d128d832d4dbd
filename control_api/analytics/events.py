"""Analytics events (version 1), built from the LiveCalls event stream.

Every event carries `id` (`call_id:seq`, unique; consumers dedupe on it), `type`, `v` (the
schema version), `call_id`, `tenant_id`, `seq` (0, 1, 2, ... per call, in order) and `at`
(UTC, ISO 8601). Types: `call.started`, `call.amd` (an outbound call's answering-machine
detection: result, rule, evidence), `transcript.final`, `tool.called`, `call.transferred`,
`call.ended` (with the outcome and a latency summary), `tenant.deleted` and `subject.erased`
(not a call's: see `TenantDeletedEvent`, `SubjectErasedEvent`), and a campaign's
`campaign.started|paused|completed` and `contact.attempted` (not a call's either: see
`CampaignEvent`, `ContactAttemptedEvent`). New fields may be added within a version; a change
that breaks consumers bumps `v`.

`CallTrack` follows one call: it turns the session's `CallEvent`s into analytics events (a
sans-IO class: no clock, no I/O — the time is passed in). Personal data is redacted there, by
the tenant's policy (`agents.pii`), before anything is built from a line: `transcript.final`'s
text, `tool.called`'s arguments and result, `call.ended`'s summary and slots carry placeholders
(`[CARD]`, `[EMAIL]`, ...), and each says in `redacted` which kinds it replaced.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any, Final

import msgspec

from agents.base import Message
from agents.outcome import CallFacts, Outcome
from agents.pii import ALL_KINDS, merge_kinds, redact
from control_api.analytics.latency import LatencySummary as LatencySummary
from control_api.analytics.latency import stages_ms as stages_ms
from control_api.analytics.latency import summarise_latency as summarise_latency
from media.call import CallInfo
from pipeline.amd import AmdEvidence
from pipeline.events import AmdDetected, CallEnded, CallEvent, ToolCalled, Transcript, TurnMetrics

EVENT_VERSION: Final = 1
EVENT_TYPES: Final = (
    "call.started",
    "call.amd",
    "transcript.final",
    "tool.called",
    "call.transferred",
    "call.ended",
    "campaign.started",
    "campaign.paused",
    "campaign.completed",
    "contact.attempted",
)


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    id: str
    call_id: str
    tenant_id: str
    seq: int
    at: str
    v: int = EVENT_VERSION


class CallStartedEvent(_Event, frozen=True, kw_only=True, tag="call.started"):
    agent: str
    agent_version: int | None = None
    node: str
    direction: str
    transport: str
    from_uri: str
    to_uri: str


class TranscriptFinalEvent(_Event, frozen=True, kw_only=True, tag="transcript.final"):
    role: str
    """user | agent"""
    text: str
    turn: int
    interrupted: bool = False
    stages_ms: dict[str, float] = msgspec.field(default_factory=dict)
    """An agent line's reply latency per stage (`pipeline.marks.STAGES`: `turn_window`,
    `stt_wait`, `agent`, `tts_first`, `playout`, `voice_to_voice`), in ms, from its turn's
    TurnMarks; empty when the reply had none (a reprompt, a keypad entry, a user line)."""
    redacted: list[str] = msgspec.field(default_factory=list)
    """The kinds of personal data replaced by placeholders in `text` (`agents.pii`: `card`,
    `email`, ...); empty when none was."""


class ToolCalledEvent(_Event, frozen=True, kw_only=True, tag="tool.called"):
    name: str
    arguments: dict[str, Any]
    result: str
    ok: bool
    redacted: list[str] = msgspec.field(default_factory=list)
    """The kinds of personal data replaced in `arguments` and `result`."""


class CallAmdEvent(_Event, frozen=True, kw_only=True, tag="call.amd"):
    """An outbound call's answering-machine detection decided (`pipeline/amd.py`)."""

    result: str
    """human | machine | unknown"""
    reason: str
    """The rule: beep | greeting_phrase | answer_phrase | long_greeting | short_greeting |
    deadline | silence"""
    decided_ms: float
    """From the answer."""
    evidence: AmdEvidence
    """Speech timing, the voicemail phrase matched (never the transcript), the beep."""


class CallTransferredEvent(_Event, frozen=True, kw_only=True, tag="call.transferred"):
    pass


class CallEndedEvent(_Event, frozen=True, kw_only=True, tag="call.ended"):
    reason: str
    duration_s: float
    outcome: Outcome
    latency: LatencySummary
    redacted: list[str] = msgspec.field(default_factory=list)
    """The kinds of personal data replaced in the outcome's summary and slots."""


class TenantDeletedEvent(_Event, frozen=True, kw_only=True, tag="tenant.deleted"):
    """A tenant and everything the node kept of it were erased (`DELETE /v1/tenants/{id}`):
    downstream stores drop what they hold of `tenant_id`. Not a call's event: `call_id` is an
    id of its own (`del_<32 hex>`), `seq` 0."""

    deleted: dict[str, int] = msgspec.field(default_factory=dict)
    """Rows erased per store table, and `recordings`: how many were deleted."""


class SubjectErasedEvent(_Event, frozen=True, kw_only=True, tag="subject.erased"):
    """A data subject's calls were erased (`DELETE /v1/subjects/{phone}`): downstream stores
    drop what they hold of `call_ids` (and of the subject's campaign contacts). Never the
    number: `subject` is its keyed reference (`store.subjects.subject_ref`). Not a call's
    event: `call_id` is the erasure's own id (`era_<32 hex>`, the audit record's), `seq` 0."""

    subject: str
    """The subject's keyed reference (`hmac-sha256:<hex>`), or `[PHONE]` without a key."""
    call_ids: list[str] = msgspec.field(default_factory=list)
    """The calls erased."""
    erased: dict[str, int] = msgspec.field(default_factory=dict)
    """How many of each were erased (`calls`, `events`, `recordings`, ...)."""


class CampaignEvent(_Event, frozen=True, kw_only=True):
    """A campaign's lifecycle move (issue 17). Not a call's event: `call_id` is an id of its
    own (`cmp_<32 hex>`), `seq` 0."""

    campaign_id: str
    state: str
    """The campaign's state after the move (`campaign.completed`: completed or cancelled)."""


class CampaignStartedEvent(CampaignEvent, frozen=True, kw_only=True, tag="campaign.started"):
    resumed: bool = False
    """Resumed after a pause (else started from its draft)."""


class CampaignPausedEvent(CampaignEvent, frozen=True, kw_only=True, tag="campaign.paused"):
    pass


class CampaignCompletedEvent(CampaignEvent, frozen=True, kw_only=True, tag="campaign.completed"):
    pass


class ContactAttemptedEvent(_Event, frozen=True, kw_only=True, tag="contact.attempted"):
    """An attempt on a campaign contact ended (or the contact was ended as do_not_call). Not
    a call's event: `call_id` is the attempt's own id (`att_<campaign>_<contact>_<attempt>`),
    `seq` 0; the call it placed, if the far end answered, is `attempt_call_id`. Never the
    number."""

    campaign_id: str
    contact_id: int
    attempt: int
    """1, 2, ...; 0 for a do_not_call contact (never dialled)."""
    disposition: str
    attempt_call_id: str | None = None
    final: bool
    """No further attempt will be made."""
    next_eligible_at: str | None = None
    """When the retry may be dialled (UTC, ISO 8601), if there is one."""


AnalyticsEvent = (
    CallStartedEvent
    | CallAmdEvent
    | TranscriptFinalEvent
    | ToolCalledEvent
    | CallTransferredEvent
    | CallEndedEvent
    | TenantDeletedEvent
    | SubjectErasedEvent
    | CampaignStartedEvent
    | CampaignPausedEvent
    | CampaignCompletedEvent
    | ContactAttemptedEvent
)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnalyticsEvent] = msgspec.json.Decoder(AnalyticsEvent)


def encode_event(event: AnalyticsEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> AnalyticsEvent:
    return _decoder.decode(data)


def event_type(event: AnalyticsEvent) -> str:
    return event.__struct_config__.tag  # type: ignore[return-value]


def iso(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redact_value(value: Any, kinds: Collection[str], found: list[str]) -> Any:
    """`value` (a string, or lists and dicts of them) with personal data redacted; the kinds
    replaced are added to `found`."""
    if isinstance(value, str):
        redaction = redact(value, kinds)
        found.extend(redaction.kinds)
        return redaction.text
    if isinstance(value, dict):
        return {key: redact_value(item, kinds, found) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item, kinds, found) for item in value]
    return value


class CallTrack:
    """One call's analytics state: the next `seq`, what the outcome needs (transcript, slots)
    and the latency of its turns. `pii`: the kinds of personal data redacted from what it
    builds (the tenant's policy; every kind by default)."""

    def __init__(
        self,
        info: CallInfo,
        *,
        agent: str,
        node: str,
        agent_version: int | None = None,
        pii: Collection[str] = ALL_KINDS,
    ) -> None:
        self.info = info
        self.pii = pii
        self.agent = agent
        self.agent_version = agent_version
        self.node = node
        self.seq = 0
        self.transcript: list[Message] = []
        self.turns: list[TurnMetrics] = []
        self._stages: dict[int, dict[str, float]] = {}
        """Per turn, the stage latencies not yet given to an agent line (each is given once)."""
        self.ended: CallEnded | None = None
        self.closed = False
        """True once `call.ended` was built."""

    def _head(self, at: datetime.datetime) -> dict[str, Any]:
        seq = self.seq
        self.seq += 1
        info = self.info
        return {
            "id": f"{info.call_id}:{seq}",
            "call_id": info.call_id,
            "tenant_id": info.tenant_id,
            "seq": seq,
            "at": iso(at),
        }

    def started(self, at: datetime.datetime) -> CallStartedEvent:
        info = self.info
        return CallStartedEvent(
            **self._head(at),
            agent=self.agent,
            agent_version=self.agent_version,
            node=self.node,
            direction=str(info.direction),
            transport=info.transport,
            from_uri=info.from_uri,
            to_uri=info.to_uri,
        )

    def feed(self, event: CallEvent, at: datetime.datetime) -> AnalyticsEvent | None:
        """The analytics event for a session event, if it makes one (`CallEnded` is only
        noted: `ended()` builds `call.ended` once the outcome is known)."""
        if self.closed:
            return None
        match event:
            case Transcript(final=True, role=role, text=text, turn=turn, interrupted=cut):
                line = redact(text, self.pii)
                self.transcript.append(
                    Message(
                        role="user" if role == "user" else "assistant",
                        text=line.text,
                        interrupted=cut,
                    )
                )
                stages = self._stages.pop(turn, {}) if role == "agent" else {}
                return TranscriptFinalEvent(
                    **self._head(at),
                    role=role,
                    text=line.text,
                    turn=turn,
                    interrupted=cut,
                    stages_ms=stages,
                    redacted=list(line.kinds),
                )
            case ToolCalled(name=name, arguments=arguments, result=result, ok=ok):
                found: list[str] = []
                return ToolCalledEvent(
                    **self._head(at),
                    name=name,
                    arguments=redact_value(arguments, self.pii, found),
                    result=redact_value(result, self.pii, found),
                    ok=ok,
                    redacted=merge_kinds(found),
                )
            case AmdDetected(result=result, reason=reason, decided_ms=ms, evidence=evidence):
                return CallAmdEvent(
                    **self._head(at), result=result, reason=reason, decided_ms=ms, evidence=evidence
                )
            case TurnMetrics(turn=turn, marks=marks):
                self.turns.append(event)
                self._stages[turn] = stages_ms(marks)
            case CallEnded(reason=reason):
                if self.ended is None:
                    self.ended = event
                    if reason == "transferred":
                        return CallTransferredEvent(**self._head(at))
        return None

    def live(self, event: CallEvent) -> CallEvent:
        """`event` as the live feed may show it: a partial transcript's text redacted."""
        if isinstance(event, Transcript) and not event.final:
            return msgspec.structs.replace(event, text=redact(event.text, self.pii).text)
        return event

    def facts(self, reason: str | None = None) -> CallFacts:
        """What the outcome is extracted from: the redacted transcript and slots."""
        ended = self.ended
        raw = ended.slots if ended else {}
        slots = {key: redact(value, self.pii).text for key, value in raw.items()}
        return CallFacts(
            reason=reason or (ended.reason if ended else "interrupted"),
            duration_s=ended.duration_s if ended else 0.0,
            slots=slots,
            transcript=tuple(self.transcript),
        )

    def end(
        self,
        outcome: Outcome,
        at: datetime.datetime,
        *,
        reason: str | None = None,
        duration_s: float | None = None,
    ) -> CallEndedEvent:
        self.closed = True
        ended = self.ended
        found: list[str] = []
        if ended is not None:  # the slots the outcome was made from (`facts`) had these kinds
            redact_value(dict(ended.slots), self.pii, found)
        outcome = msgspec.structs.replace(
            outcome,
            summary=redact_value(outcome.summary, self.pii, found),
            slots=redact_value(outcome.slots, self.pii, found),
        )
        return CallEndedEvent(
            **self._head(at),
            reason=reason or (ended.reason if ended else "interrupted"),
            duration_s=duration_s if duration_s is not None else (ended.duration_s if ended else 0),
            outcome=outcome,
            latency=summarise_latency(self.turns),
            redacted=merge_kinds(found),
        )
