"""The node's events for the bench's calls (a fake `WS /v1/events`), the call-history fallback,
and a whole step of concurrent calls against scripted fake nodes on a virtual clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve

from bench.wire.caller import CallerOptions
from bench.wire.events import NodeEvents, ws_url
from bench.wire.leg import LegTarget
from bench.wire.measure import caller_wer, line_latencies
from bench.wire.runner import ProgressBar, StepOptions, run_step
from bench.wire.timeline import NodeTranscript
from media.clock import VirtualClock

from .wire_fakes import FakeNodes, ScriptedNode, line

F = 0.02
MARKS = {
    "speech_end": 0.0,
    "endpoint": 0.3,
    "final_transcript": 0.35,
    "agent_first_text": 0.36,
    "first_tts_audio": 0.5,
    "first_frame_out": 0.51,
}


def events_for(call_id: str) -> list[dict[str, Any]]:
    base = {"call_id": call_id, "tenant_id": "demo"}
    return [
        {**base, "type": "call.started", "agent": "receptionist"},
        {**base, "type": "transcript.partial", "role": "user", "text": "hel", "turn": 1},
        {**base, "type": "transcript.final", "role": "agent", "text": "Hi there.", "turn": 0},
        {**base, "type": "transcript.final", "role": "user", "text": "hello there", "turn": 1},
        {**base, "type": "turn.metrics", "turn": 1, "voice_to_voice_ms": 510.0, "marks": MARKS},
        {**base, "type": "transcript.final", "role": "agent", "text": "Yes?", "turn": 1},
        {**base, "type": "call.ended", "reason": "hangup", "latency": {"turns": 1}},
    ]


@asynccontextmanager
async def fake_events(call_ids: list[str], seen: list[str]) -> AsyncIterator[int]:
    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append(f"{ws.request.path} {ws.request.headers.get('Authorization')}")
        await ws.send(json.dumps({"type": "ready", "tenant_id": "demo"}))
        for call_id in call_ids:
            for message in events_for(call_id):
                await ws.send(json.dumps(message))
        await ws.send("not json")
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield port


def test_ws_url() -> None:
    assert ws_url("http://h:8080/", "demo") == "ws://h:8080/v1/events?tenant=demo"
    assert ws_url("https://h", "a b") == "wss://h/v1/events?tenant=a+b"


async def test_a_step_of_two_calls_with_the_nodes_events() -> None:
    seen: list[str] = []
    async with fake_events(["fake-0", "fake-1"], seen) as port:
        clock = VirtualClock()
        nodes = FakeNodes(lambda: ScriptedNode(reply_after=10), clock)
        shown: list[str] = []
        target = LegTarget(base_url=f"http://127.0.0.1:{port}", api_key="secret-k")
        options = StepOptions(
            stagger_s=0.5,
            events_timeout_s=5.0,
            caller=CallerOptions(reply_gap_s=0.3, reply_timeout_s=2.0),
        )
        task = asyncio.ensure_future(
            run_step(
                2,
                nodes,
                target,
                [line(text="hello there")],
                options=options,
                clock=clock,
                progress=ProgressBar(out=shown.append),
            )
        )
        for _ in range(20_000):
            if task.done():
                break
            await clock.advance(F)
        result = await task
    assert seen == ["/v1/events?tenant=demo Bearer secret-k"]
    assert result.calls == 2 and result.failed == 0 and result.events_error == ""
    first, second = result.timelines
    assert (first.call_id, second.call_id) == ("fake-0", "fake-1")
    assert second.answered is not None and first.answered is not None
    assert second.answered - first.answered == pytest.approx(0.5, abs=F)
    for tl in result.timelines:
        assert [t.text for t in tl.transcripts] == ["Hi there.", "hello there", "Yes?"]
        assert [t.voice_to_voice_ms for t in tl.node_turns] == [510.0]
        assert tl.node_turns[0].marks == MARKS
        assert caller_wer([x.text for x in tl.lines], tl.transcripts).wer == 0.0
        v2v = line_latencies(tl)[0].v2v_s
        assert v2v is not None and abs(v2v - 10 * F) <= F
    assert all(leg.hung_up == 1 for leg in nodes.legs)
    assert result.v2v_p95_ms() == pytest.approx(200.0, abs=20.0)
    assert any("2/2" in s for s in shown)


async def test_without_the_socket_transcripts_come_from_the_history() -> None:
    def history(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer k"
        assert request.url.params["tenant"] == "demo"
        if request.url.path == "/v1/calls/c1":
            transcript = [{"role": "user", "text": "hello", "turn": 1}]
            return httpx.Response(200, json={"transcript": transcript, "latency": {"turns": 1}})
        return httpx.Response(404, json={})

    # Nothing listens on port 9 for the socket; the history answers through a mock transport.
    events = NodeEvents(
        "http://127.0.0.1:9", "k", "demo", http_transport=httpx.MockTransport(history)
    )
    async with events:
        assert events.error.startswith("events socket unavailable")
        await events.wait_ended(["c1", "c2"], timeout_s=1.0)
    assert events.calls["c1"].transcripts == [NodeTranscript(role="user", text="hello", turn=1)]
    assert events.calls["c1"].latency == {"turns": 1}
    assert events.calls["c2"].transcripts == []


def test_feed_ignores_what_it_does_not_know() -> None:
    events = NodeEvents("http://x", "k", "demo")
    events.feed({"type": "ready"})
    events.feed({"type": "call.state", "call_id": "a", "state": "listening"})
    events.feed({"type": "turn.metrics", "call_id": "a", "turn": 2, "marks": {}})
    assert list(events.calls) == ["a"]
    assert events.calls["a"].turns[0].voice_to_voice_ms is None
    assert not events.calls["a"].ended.is_set()
