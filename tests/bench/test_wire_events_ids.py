"""An AudioSocket leg knows its call by the UUID it sent, the node by a call id of its own
(the UUID only routes): the events collector files the call under both once `call.started`
names the UUID, so the leg's timeline gets the node's transcripts and end. A SIP leg names
itself in the Request-URI (`LEG_PARAM`), which the node reports as `to_uri`."""

from __future__ import annotations

import uuid

from bench.wire.events import LEG_PARAM, NodeEvents, sip_leg_name


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


def test_a_sip_call_is_found_by_the_name_in_its_request_uri() -> None:
    leg = "0123456789abcdef0123456789abcdef"
    events = NodeEvents("http://x", "k", "demo")
    events.feed(
        {
            "type": "call.started",
            "call_id": "node-id-2",
            "transport": "sip",
            "from_uri": "<sip:bench@127.0.0.1>;tag=abc",
            "to_uri": f"sip:1000@127.0.0.1:5060;{LEG_PARAM}={leg}",
        }
    )
    events.feed(
        {"type": "transcript.final", "call_id": "node-id-2", "role": "user", "text": "Hello"}
    )
    assert events.calls[leg] is events.calls["node-id-2"]
    assert [t.text for t in events.calls[leg].transcripts] == ["Hello"]


def test_a_leg_name_is_read_only_whole() -> None:
    leg = "0123456789abcdef0123456789abcdef"
    assert sip_leg_name(f"sip:1000@h;{LEG_PARAM}={leg};transport=udp") == leg
    assert sip_leg_name(f"<sip:1000@h;{LEG_PARAM}={leg}>") == leg
    assert sip_leg_name(f"sip:1000@h;{LEG_PARAM}={leg}ff") is None  # not 32 hex digits
    assert sip_leg_name(f"sip:1000@h;{LEG_PARAM}={leg[:-1]}") is None
    assert sip_leg_name("sip:1000@h;user=phone") is None
