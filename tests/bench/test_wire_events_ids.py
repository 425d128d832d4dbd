"""An AudioSocket leg knows its call by the UUID it sent, the node by a call id of its own
(the UUID only routes): the events collector files the call under both once `call.started`
names the UUID, so the leg's timeline gets the node's transcripts and end."""

from __future__ import annotations

import uuid

from bench.wire.events import NodeEvents


def test_an_audiosocket_call_is_found_by_its_uuid() -> None:
    call_uuid = uuid.uuid4()
    events = NodeEvents("http://x", "k", "demo")
    events.feed(
        {
            "type": "call.started",
            "call_id": "node-id-1",
            "transport": "audiosocket",
            "from_uri": f"audiosocket:{call_uuid}",
        }
    )
    events.feed(
        {
            "type": "transcript.final",
            "call_id": "node-id-1",
            "role": "agent",
            "text": "Hi",
            "turn": 0,
        }
    )
    events.feed({"type": "call.ended", "call_id": "node-id-1", "latency": {"turns": 1}})
    by_uuid = events.calls[call_uuid.hex]
    assert by_uuid is events.calls["node-id-1"]
    assert by_uuid.ended.is_set() and [t.text for t in by_uuid.transcripts] == ["Hi"]


def test_other_sources_are_not_aliased() -> None:
    events = NodeEvents("http://x", "k", "demo")
    events.feed({"type": "call.started", "call_id": "a", "from_uri": "sip:+15550001111@x"})
    events.feed({"type": "call.started", "call_id": "b", "from_uri": "audiosocket:not-a-uuid"})
    assert sorted(events.calls) == ["a", "b"]
