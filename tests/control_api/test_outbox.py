"""The recorder and the outbox: events written with the call record in one transaction, a
bounded queue that never blocks a call, and recovery after the node was killed (SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import msgspec
import redis.asyncio as aioredis
from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics.events import decode_event
from control_api.analytics.outbox import RECOVERED_REASON, write_events
from control_api.analytics.recorder import CallEventRecorder
from control_api.analytics.tables import CallRow, OutboxRow
from control_api.store import Store
from media.call import CallInfo
from media.clock import VirtualClock
from tests.control_api.redis_server import RedisServer, redis_server
from tests.support.analytics import (
    NODE,
    FakeCalls,
    WallClock,
    call_info,
    closing,
    make_store,
    opening,
    settings,
    store,
    wait_for,
)

__all__ = ["redis_server", "store"]

REPO = Path(__file__).resolve().parents[2]


async def outbox_rows(store: Store, call_id: str | None = None) -> list[OutboxRow]:
    async with store.session() as session:
        stmt = select(OutboxRow).order_by(OutboxRow.id)
        if call_id is not None:
            stmt = stmt.where(OutboxRow.call_id == call_id)
        return list((await session.scalars(stmt)).all())


async def call_row(store: Store, call_id: str) -> CallRow | None:
    async with store.session() as session:
        return await session.get(CallRow, call_id)


async def stream_entries(url: str, stream: str = "voicenode:events") -> list[dict[str, str]]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        entries = await client.xrange(stream)
    finally:
        await client.aclose()
    return [fields for _id, fields in entries]


async def test_call_is_recorded_with_its_events(store: Store) -> None:
    calls = FakeCalls()
    info = call_info("c1")
    async with open_analytics(settings(), store, calls, wall=WallClock()) as analytics:
        for event in opening():
            calls.emit(info, event)

        async def started() -> bool:
            row = await call_row(store, "c1")
            return row is not None and len(await outbox_rows(store, "c1")) == 3

        await wait_for(started, what="call.started and two transcripts written")
        row = await call_row(store, "c1")
        assert row is not None and row.ended_at is None  # live
        assert row.from_uri == "sip:+15550100@example.com" and row.agent == "receptionist"
        for event in closing():
            calls.emit(info, event)

        async def ended() -> bool:
            row = await call_row(store, "c1")
            return row is not None and row.ended_at is not None

        await wait_for(ended, what="call.ended written")
        assert analytics.recorder.dropped == 0
    rows = await outbox_rows(store, "c1")
    assert [r.type for r in rows] == [
        "call.started",
        "transcript.final",
        "transcript.final",
        "tool.called",
        "call.ended",
    ]
    assert [r.seq for r in rows] == [0, 1, 2, 3, 4]
    assert [r.event_id for r in rows] == [f"c1:{i}" for i in range(5)]
    ended_event = decode_event(rows[-1].payload)
    assert ended_event.id == "c1:4"
    row = await call_row(store, "c1")
    assert row is not None
    assert row.disposition == "completed" and row.end_reason == "completed"
    assert row.sentiment == "positive"  # "thanks"
    assert row.slots == {"day": "tuesday"}
    assert [line["role"] for line in row.transcript or []] == ["user", "agent"]
    assert row.latency is not None and row.latency["turns"] == 1
    assert row.latency["voice_to_voice_ms_p50"] == 640


async def test_call_without_an_end_event_is_closed_as_failed(store: Store) -> None:
    calls = FakeCalls()
    info = call_info("c2")
    async with open_analytics(settings(), store, calls, wall=WallClock()) as analytics:
        calls.emit(info, opening()[0])
        calls.live.discard("c2")  # the call's task died without a CallEnded
        assert analytics.recorder.sweep(lambda cid: calls.get(cid) is not None) == ["c2"]
    row = await call_row(store, "c2")
    assert row is not None and row.disposition == "failed" and row.end_reason == "failed"


async def test_open_calls_are_closed_as_interrupted_on_exit(store: Store) -> None:
    calls = FakeCalls()
    async with open_analytics(settings(), store, calls, wall=WallClock()):
        for event in opening():
            calls.emit(call_info("c3"), event)
    row = await call_row(store, "c3")
    assert row is not None and row.disposition == "failed" and row.end_reason == "interrupted"
    assert [r.type for r in await outbox_rows(store, "c3")][-1] == "call.ended"


async def test_full_queue_drops_and_counts_instead_of_blocking(store: Store) -> None:
    recorder = CallEventRecorder(
        settings(queue_size=16).analytics,
        store=store,
        node=NODE,
        clock=VirtualClock(),
        wall=WallClock(),
    )
    info = call_info("c4")
    for turn in range(10):  # 1 + 2 per turn analytics events; nobody writes them
        for event in opening(turn):
            recorder.on_call_event(info, event)
    assert recorder.dropped == 1 + 2 * 10 - 16


async def _write_unfinished_call(store: Store, info: CallInfo) -> None:
    from control_api.analytics.events import CallTrack

    track = CallTrack(info, agent="receptionist", node=NODE)
    wall = WallClock()
    events = [track.started(wall())]
    for event in opening():
        out = track.feed(event, wall())
        if out is not None:
            events.append(out)
    async with store.session() as session:
        await write_events(session, events, NODE)


async def test_restart_after_a_crash_records_the_call_as_failed_and_delivers_everything(
    store: Store, redis_server: RedisServer
) -> None:
    """The state a SIGKILL leaves: an open call and undelivered outbox rows."""
    await _write_unfinished_call(store, call_info("dead"))
    calls = FakeCalls()
    conf = settings(redis_url=redis_server.url)
    async with open_analytics(conf, store, calls, wall=WallClock()):
        row = await call_row(store, "dead")
        assert row is not None and row.disposition == "failed"
        assert row.end_reason == RECOVERED_REASON
        assert [line["role"] for line in row.transcript or []] == ["user", "agent"]

        async def delivered() -> bool:
            return len(await stream_entries(redis_server.url)) == 4

        await wait_for(delivered, what="all four events in the stream")
    entries = await stream_entries(redis_server.url)
    assert [e["id"] for e in entries] == [f"dead:{i}" for i in range(4)]
    assert [e["type"] for e in entries][-1] == "call.ended"
    ended = msgspec.json.decode(entries[-1]["payload"])
    assert ended["outcome"]["disposition"] == "failed"
    assert entries[0]["tenant_id"] == "demo" and entries[0]["call_id"] == "dead"


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from control_api.analytics import open_analytics
    from tests.support.analytics import (
        FakeCalls, WallClock, call_info, make_store, opening, settings, wait_for)

    async def main(path):
        store = await make_store(path)
        calls = FakeCalls()
        async with open_analytics(settings(), store, calls, wall=WallClock()) as analytics:
            for event in opening():
                calls.emit(call_info("killed"), event)

            async def written():
                return analytics.recorder.written >= 3

            await wait_for(written)
            print("written", flush=True)
            await asyncio.Event().wait()  # mid-call until killed

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_node_killed_with_sigkill_mid_call(tmp_path: Path, redis_server: RedisServer) -> None:
    db = tmp_path / "killed.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(db),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(60):
            line = await child.stdout.readline()
        assert line.strip() == b"written"
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    store = await make_store(db)
    try:
        conf = settings(redis_url=redis_server.url)
        async with open_analytics(conf, store, FakeCalls(), wall=WallClock()):

            async def delivered() -> bool:
                return len(await stream_entries(redis_server.url)) == 4

            await wait_for(delivered, what="the killed call's events in the stream")
        row = await call_row(store, "killed")
        assert row is not None and row.disposition == "failed"
        entries = await stream_entries(redis_server.url)
        assert [e["id"] for e in entries] == [f"killed:{i}" for i in range(4)]
    finally:
        await store.close()
