"""An outbound call's answering-machine decision in the analytics outbox: `call.amd`, with its
evidence, between `call.started` and `call.ended`, in one call's `seq` order."""

from __future__ import annotations

from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics.events import CallAmdEvent, decode_event, encode_event
from control_api.analytics.tables import CallRow, OutboxRow
from control_api.store import Store
from pipeline.amd import AmdDecision, AmdEvidence
from pipeline.events import AmdDetected, CallEnded
from tests.support.analytics import FakeCalls, WallClock, call_info, settings, store, wait_for

__all__ = ["store"]

DECISION = AmdDecision(
    result="machine",
    reason="beep",
    decided_ms=3120.0,
    evidence=AmdEvidence(
        first_speech_ms=380.0,
        speech_ms=2240.0,
        greeting_ms=2300.0,
        utterances=1,
        silence_ms=20.0,
        phrase="leave a message",
        words=7,
        beep_hz=1000.0,
        beep_end_ms=3100.0,
    ),
)


async def outbox_rows(store: Store, call_id: str) -> list[OutboxRow]:
    async with store.session() as session:
        stmt = select(OutboxRow).where(OutboxRow.call_id == call_id).order_by(OutboxRow.id)
        return list((await session.scalars(stmt)).all())


async def test_the_decision_is_recorded_with_its_evidence(store: Store) -> None:
    calls = FakeCalls()
    info = call_info("amd1")
    async with open_analytics(settings(), store, calls, wall=WallClock()):
        calls.emit(info, AmdDetected.of(DECISION))
        calls.emit(info, CallEnded(reason="voicemail", duration_s=14.2))

        async def ended() -> bool:
            async with store.session() as session:
                row = await session.get(CallRow, "amd1")
            return row is not None and row.ended_at is not None

        await wait_for(ended, what="call.ended written")
    rows = await outbox_rows(store, "amd1")
    assert [(r.type, r.seq) for r in rows] == [
        ("call.started", 0),
        ("call.amd", 1),
        ("call.ended", 2),
    ]
    event = decode_event(rows[1].payload)
    assert isinstance(event, CallAmdEvent) and event.id == "amd1:1"
    assert (event.result, event.reason, event.decided_ms) == ("machine", "beep", 3120.0)
    assert event.evidence == DECISION.evidence
    assert decode_event(encode_event(event)) == event
    async with store.session() as session:
        row = await session.get(CallRow, "amd1")
    assert row is not None and row.end_reason == "voicemail"
