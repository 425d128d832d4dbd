"""Analytics events from a call's session events (CallTrack), their wire form, the live feed."""

from __future__ import annotations

import msgspec

from agents.outcome import rules_outcome
from control_api.analytics.events import (
    CallEndedEvent,
    CallTrack,
    TranscriptFinalEvent,
    decode_event,
    encode_event,
    summarise_latency,
)
from control_api.analytics.feed import LiveFeed
from pipeline.events import CallEnded, StateChanged, TurnMetrics
from tests.support.analytics import T0, call_info, closing, opening


def test_a_call_becomes_numbered_versioned_events() -> None:
    track = CallTrack(call_info("c1"), agent="receptionist", node="n1", agent_version=3)
    events = [track.started(T0)]
    for event in opening() + closing("transferred"):
        out = track.feed(event, T0)
        if out is not None:
            events.append(out)
    events.append(track.end(rules_outcome(track.facts()), T0))
    wire = [msgspec.json.decode(encode_event(e)) for e in events]
    assert [w["type"] for w in wire] == [
        "call.started",
        "transcript.final",
        "transcript.final",
        "tool.called",
        "call.transferred",
        "call.ended",
    ]
    assert [w["id"] for w in wire] == [f"c1:{i}" for i in range(6)]
    assert all(w["v"] == 1 and w["tenant_id"] == "demo" for w in wire)
    assert wire[0]["agent_version"] == 3 and wire[0]["at"] == "2025-05-01T12:00:00.000Z"
    assert wire[-1]["outcome"]["disposition"] == "transferred"
    assert wire[-1]["latency"]["voice_to_voice_ms_p50"] == 640
    assert decode_event(encode_event(events[1])) == events[1]
    assert isinstance(events[1], TranscriptFinalEvent) and events[1].role == "user"
    assert track.feed(StateChanged("listening"), T0) is None  # nothing after the end
    assert isinstance(events[-1], CallEndedEvent)


def test_a_second_call_ended_is_ignored() -> None:
    track = CallTrack(call_info("c1"), agent="a", node="n")
    assert track.feed(CallEnded(reason="transferred", duration_s=1), T0) is not None
    assert track.feed(CallEnded(reason="failed", duration_s=2), T0) is None
    assert track.facts().reason == "transferred"


def test_latency_summary() -> None:
    turns = [
        TurnMetrics(turn=i, marks={"first_audio": 0.1 * i}, voice_to_voice_ms=100.0 * i)
        for i in range(1, 11)
    ]
    summary = summarise_latency(turns)
    assert summary.turns == 10
    assert summary.voice_to_voice_ms_p50 == 550.0
    assert summary.voice_to_voice_ms_p95 == 1000.0 and summary.voice_to_voice_ms_max == 1000.0
    assert summary.marks_p50_s == {"first_audio": 0.55}
    assert summarise_latency([]).turns == 0


def test_live_feed_is_per_tenant_and_drops_slow_subscribers() -> None:
    feed = LiveFeed()
    with feed.subscribe("acme", size=2) as acme, feed.subscribe(None) as admin:
        feed.publish_live(call_info("a", tenant="acme"), StateChanged("listening"))
        feed.publish_live(call_info("d"), StateChanged("listening"))
        assert acme.queue.qsize() == 1 and admin.queue.qsize() == 2
        assert not acme.overflowed.is_set()
        for _ in range(2):
            feed.publish_live(call_info("a", tenant="acme"), StateChanged("thinking"))
        assert acme.overflowed.is_set()
        assert len(feed) == 2
    assert len(feed) == 0
