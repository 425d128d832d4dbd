"""The analytics benchmark's calls: what a fleet's outbox holds after N calls of several tenants
over D days, made from a seed (the same seed gives the same calls, events and bytes).

Each call is the node's own events (`control_api.analytics.events`), made into outbox rows by
the node's own code (`outbox.outbox_columns`): `call.started`, its `transcript.final` lines (the
agent's greeting first, then caller and agent in turn; an agent line carries its reply's stage
timings and is cut by the caller now and then), a `tool.called` in some calls, and `call.ended`
with the outcome and the call's voice-to-voice summary. Beside them, the call's record
(`CallRow`) as `outbox.write_events` leaves it when the call has ended (made by its
`started_record` and `end_record`): the sink completes a `calls` row from it. The turns are
spread over the calls so that they add up to exactly the number asked for.

Calls are made in start order, a chunk at a time (`CHUNK_CALLS`); within a chunk the events are
in time order, so calls that overlap interleave as they do in a node's outbox.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator
from typing import Final, NamedTuple, TypedDict

from sqlalchemy.orm import configure_mappers

from agents.outcome import DISPOSITIONS, Outcome, Sentiment, SentimentLabel
from control_api.analytics.events import (
    AnalyticsEvent,
    CallEndedEvent,
    CallStartedEvent,
    LatencySummary,
    ToolCalledEvent,
    TranscriptFinalEvent,
    iso,
)
from control_api.analytics.outbox import (
    end_record,
    outbox_columns,
    started_record,
    transcript_line,
)
from control_api.analytics.tables import CallRow, OutboxRow

NODE: Final = "bench-node"
END: Final = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
"""The workload's days end here (fixed, so a seed always gives the same rows)."""
CHUNK_CALLS: Final = 64

TENANTS: Final[dict[str, float]] = {
    "acme-clinics": 0.38,
    "bright-dental": 0.24,
    "city-cabs": 0.18,
    "north-bank": 0.12,
    "parcel-point": 0.08,
}
"""Tenant -> share of the calls (one big tenant, a long tail)."""
AGENTS: Final = ("receptionist", "booking", "support")
TRANSPORTS: Final[dict[str, float]] = {"sip": 0.6, "audiosocket": 0.25, "webrtc": 0.15}
_DISPOSITION_WEIGHTS: Final = (0.62, 0.15, 0.12, 0.06, 0.05)  # in DISPOSITIONS' order
_REASONS: Final[dict[str, tuple[str, ...]]] = {
    "completed": ("completed", "hangup"),
    "transferred": ("transferred",),
    "abandoned": ("hangup",),
    "no_input": ("no_input",),
    "failed": ("failed", "max_duration"),
}
_SENTIMENTS: Final[tuple[tuple[SentimentLabel, float], ...]] = (
    ("positive", 0.45),
    ("neutral", 0.4),
    ("negative", 0.15),
)
_CALLER: Final = (
    "Hi, I'd like to book an appointment for next Tuesday",
    "Can you tell me what time you open tomorrow?",
    "Yes, that works for me",
    "No, the afternoon would be better",
    "My number is five five five, zero one nine two",
    "I need to change my booking",
    "Could I speak to someone, please?",
    "Thanks, that's all",
)
_AGENT: Final = (
    "Thanks for calling, how can I help you today?",
    "Sure, what day would suit you?",
    "I have ten thirty or two fifteen free, which would you like?",
    "Done, you're booked in. Is there anything else?",
    "Let me put you through to a colleague.",
    "Could you say that again, please?",
    "We open at eight in the morning.",
)
_STAGES_MS: Final = {  # stage -> (low, high) of a reply's time in it, ms
    "turn_window": (250.0, 700.0),
    "stt_wait": (40.0, 220.0),
    "agent": (180.0, 950.0),
    "tts_first": (70.0, 260.0),
    "playout": (15.0, 60.0),
}


class Workload(NamedTuple):
    calls: int
    turns: int
    """`transcript.final` lines over all the calls (at least one per call)."""
    days: int = 30
    seed: int = 23


class Chunk(NamedTuple):
    records: list[CallRow]
    """The calls' records, as the node's store holds them once the calls have ended."""
    events: list[OutboxRow]
    """Their outbox rows, in time order."""


def turn_counts(calls: int, turns: int, rng: random.Random) -> list[int]:
    """Lines per call: from 1 to about twice the mean, adding up to `turns` exactly."""
    if calls < 1 or turns < calls:
        raise ValueError(f"need at least one call and one turn per call ({calls=}, {turns=})")
    weights = [rng.uniform(0.2, 1.8) for _ in range(calls)]
    spare, total = turns - calls, sum(weights)
    counts = [1 + int(w / total * spare) for w in weights]
    for i in range(turns - sum(counts)):
        counts[i % calls] += 1
    return counts


def _choice(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _stages(rng: random.Random) -> dict[str, float]:
    stages = {name: round(rng.uniform(lo, hi), 1) for name, (lo, hi) in _STAGES_MS.items()}
    stages["voice_to_voice"] = round(sum(stages.values()), 1)
    return stages


def _latency(v2v: list[float]) -> LatencySummary:
    """The call's voice-to-voice summary, by `events.summarise_latency`'s rule."""
    if not v2v:
        return LatencySummary()
    ordered = sorted(v2v)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return LatencySummary(
        turns=n,
        voice_to_voice_ms_p50=round(median, 1),
        voice_to_voice_ms_p95=round(ordered[min(n - 1, int(0.95 * n))], 1),
        voice_to_voice_ms_max=round(ordered[-1], 1),
    )


class _Head(TypedDict):
    id: str
    call_id: str
    tenant_id: str
    seq: int
    at: str


class _Call:
    """One call's events and record (`make`), its times from `started`."""

    def __init__(self, rng: random.Random, call_id: str, started: datetime.datetime) -> None:
        self.rng = rng
        self.id = call_id
        self.started = started.replace(microsecond=started.microsecond // 1000 * 1000)
        self.tenant = _choice(rng, TENANTS)
        self.events: list[AnalyticsEvent] = []

    def _head(self, at: datetime.datetime) -> _Head:
        seq = len(self.events)
        return _Head(
            id=f"{self.id}:{seq}", call_id=self.id, tenant_id=self.tenant, seq=seq, at=iso(at)
        )

    def make(self, lines: int) -> CallRow:
        rng = self.rng
        agent = rng.choice(AGENTS)
        started = CallStartedEvent(
            **self._head(self.started),
            agent=agent,
            agent_version=rng.randint(1, 4),
            node=NODE,
            direction="inbound" if rng.random() < 0.8 else "outbound",
            transport=_choice(rng, TRANSPORTS),
            from_uri=f"sip:+1555{rng.randrange(10**7):07d}@carrier.example",
            to_uri=f"agent:{agent}",
        )
        self.events.append(started)
        transcript, v2v, last = self._lines(lines)
        ended = self._ended(last + datetime.timedelta(seconds=rng.uniform(1, 6)), v2v)
        record = started_record(started, NODE)
        end_record(record, ended)
        record.transcript = transcript
        return record

    def _lines(self, lines: int) -> tuple[list[dict[str, object]], list[float], datetime.datetime]:
        """The transcript as `outbox.transcript_of` gives it, the replies' voice to voice, and
        the time of the last line."""
        rng, at = self.rng, self.started
        transcript: list[dict[str, object]] = []
        v2v: list[float] = []
        tool_after = rng.randrange(lines) if rng.random() < 0.3 else -1
        for index in range(lines):
            at += datetime.timedelta(milliseconds=rng.randint(1500, 7000))
            agent_line = index % 2 == 0  # the agent greets, then caller and agent take turns
            stages = _stages(rng) if agent_line and index else {}
            line = TranscriptFinalEvent(
                **self._head(at),
                role="agent" if agent_line else "user",
                text=rng.choice(_AGENT if agent_line else _CALLER),
                turn=(index + 1) // 2,
                interrupted=agent_line and index > 0 and rng.random() < 0.07,
                stages_ms=stages,
            )
            self.events.append(line)
            if stages:
                v2v.append(stages["voice_to_voice"])
            transcript.append(transcript_line(line))
            if index == tool_after:
                self.events.append(
                    ToolCalledEvent(
                        **self._head(at),
                        name="check_availability",
                        arguments={"day": "tuesday"},
                        result="10:30, 14:15",
                        ok=True,
                    )
                )
        return transcript, v2v, at

    def _ended(self, at: datetime.datetime, v2v: list[float]) -> CallEndedEvent:
        rng = self.rng
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        disposition = rng.choices(DISPOSITIONS, weights=_DISPOSITION_WEIGHTS)[0]
        label = rng.choices([s for s, _ in _SENTIMENTS], weights=[w for _, w in _SENTIMENTS])[0]
        score = {"positive": 0.6, "neutral": 0.0, "negative": -0.6}[label]
        ended = CallEndedEvent(
            **self._head(at),
            reason=rng.choice(_REASONS[disposition]),
            duration_s=round((at - self.started).total_seconds(), 3),
            outcome=Outcome(
                disposition=disposition,
                summary="The caller asked about an appointment; the agent offered times.",
                sentiment=Sentiment(label=label, score=round(score + rng.uniform(-0.3, 0.3), 2)),
                slots={"day": "tuesday"} if disposition == "completed" else {},
                source="rules",
            ),
            latency=_latency(v2v),
        )
        self.events.append(ended)
        return ended


def outbox_row(event: AnalyticsEvent, row_id: int) -> OutboxRow:
    """The outbox row `outbox.write_events` makes of `event`, as the relay has it once loaded
    from the store: its values in place, nothing to flush (made without the ORM's per-attribute
    change tracking, several times faster; `configure_mappers()` must have run)."""
    row: OutboxRow = OutboxRow.__mapper__.class_manager.new_instance()
    row.__dict__.update(outbox_columns(event, NODE), id=row_id)
    return row


def generate(workload: Workload) -> Iterator[Chunk]:
    """The workload's calls, `CHUNK_CALLS` at a time, in start order."""
    configure_mappers()
    rng = random.Random(workload.seed)
    counts = turn_counts(workload.calls, workload.turns, rng)
    start = END - datetime.timedelta(days=workload.days)
    span_s = workload.days * 86_400 / workload.calls
    row_id = 0
    for first in range(0, workload.calls, CHUNK_CALLS):
        records: list[CallRow] = []
        events: list[AnalyticsEvent] = []
        for index in range(first, min(first + CHUNK_CALLS, workload.calls)):
            started = start + datetime.timedelta(seconds=(index + rng.random()) * span_s)
            call = _Call(rng, f"call-{workload.seed}-{index:08d}", started)
            records.append(call.make(counts[index]))
            events += call.events
        events.sort(key=lambda e: (e.at, e.call_id, e.seq))
        rows = []
        for event in events:
            row_id += 1
            rows.append(outbox_row(event, row_id))
        yield Chunk(records, rows)
