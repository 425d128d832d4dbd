"""Per-turn stage timings: an agent line's `transcript.final` carries its turn's TurnMarks
intervals (`stages_ms`), once; the `turns` table has a `<stage>_ms` column for each (schema
version 2), filled from them; a database at version 1 migrates to 2 with its rows kept, also
when a node stopped between version 2's ALTER and recording it (against a real 18.16 server)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from control_api.analytics import open_analytics
from control_api.analytics.chsink import turn_row
from control_api.analytics.clickhouse import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TURN_STAGES,
    ClickHouse,
    migrate,
)
from control_api.analytics.events import CallTrack, TranscriptFinalEvent
from control_api.store import Store
from pipeline.events import CallEnded, CallEvent, Transcript, TurnMetrics
from pipeline.marks import STAGES
from tests.control_api.test_analytics_clickhouse import ch_settings, with_clickhouse
from tests.support.analytics import (
    T0,
    FakeCalls,
    WallClock,
    call_info,
    store,
    wait_for,
)
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server

__all__ = ["clickhouse_server", "store"]

MARKS = {
    "speech_end": 3.0,
    "endpoint": 3.25,
    "final_transcript": 3.3,
    "agent_first_text": 3.5,
    "first_tts_audio": 3.6,
    "first_frame_out": 3.62,
}
"""Seconds since the call started, as `TurnMarks.metrics` gives them."""
STAGES_MS = {
    "turn_window": 250.0,
    "stt_wait": 50.0,
    "agent": 200.0,
    "tts_first": 100.0,
    "playout": 20.0,
    "voice_to_voice": 620.0,
}


def a_turn(turn: int = 1) -> list[CallEvent]:
    """A turn as the session emits it: the caller's line, the reply's first frame (its
    metrics), the reply's line once played; then a reprompt in the same turn (no marks)."""
    return [
        Transcript(role="user", text="when are you open", final=True, turn=turn),
        TurnMetrics(turn=turn, marks=MARKS, voice_to_voice_ms=620.0),
        Transcript(role="agent", text="Nine to five.", final=True, turn=turn),
        Transcript(role="agent", text="Anything else?", final=True, turn=turn),
    ]


def finals(events: list[CallEvent]) -> list[TranscriptFinalEvent]:
    track = CallTrack(call_info("c1"), agent="receptionist", node="n1")
    out = [track.feed(event, T0) for event in events]
    return [e for e in out if isinstance(e, TranscriptFinalEvent)]


def test_the_reply_line_carries_its_turns_stage_timings_once() -> None:
    user, reply, reprompt = finals(a_turn())
    assert user.stages_ms == {}
    assert reply.stages_ms == STAGES_MS
    assert reprompt.stages_ms == {}  # the turn's marks belong to the first reply only


def test_a_reply_without_marks_has_no_stage_timings() -> None:
    # A keypad entry's reply (no TurnMarks), and a line of a later turn: never another turn's.
    events: list[CallEvent] = [
        TurnMetrics(turn=1, marks=MARKS, voice_to_voice_ms=620.0),
        Transcript(role="agent", text="You pressed one.", final=True, turn=2),
    ]
    (line,) = finals(events)
    assert line.stages_ms == {}


def test_marks_missing_a_stage_leave_that_stage_out() -> None:
    partial = {k: v for k, v in MARKS.items() if k != "agent_first_text"}
    (_user, reply, _reprompt) = finals(
        [a_turn()[0], TurnMetrics(turn=1, marks=partial), *a_turn()[2:]]
    )
    assert set(reply.stages_ms) == {"turn_window", "stt_wait", "playout", "voice_to_voice"}


def test_the_columns_follow_the_pipelines_stages() -> None:
    assert TURN_STAGES == tuple(STAGES)
    (_user, reply, _reprompt) = finals(a_turn())
    row = turn_row(reply)
    assert {f"{s}_ms": row[f"{s}_ms"] for s in TURN_STAGES} == {
        f"{s}_ms": v for s, v in STAGES_MS.items()
    }
    assert all(turn_row(finals(a_turn())[0])[f"{s}_ms"] is None for s in TURN_STAGES)


async def _turns(server: ClickHouseServer, where: str = "") -> list[dict[str, Any]]:
    columns = ", ".join(f"{s}_ms" for s in TURN_STAGES)
    text = await server.query(
        f"SELECT call_id, role, text, {columns} FROM voicenode.turns FINAL {where}"
        " ORDER BY call_id, seq FORMAT JSONEachRow"
    )
    return [json.loads(line) for line in text.splitlines()]


async def test_the_stage_columns_land_in_clickhouse(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    calls = FakeCalls()
    async with open_analytics(with_clickhouse(clickhouse_server), store, calls, wall=WallClock()):
        info = call_info("staged")
        for event in [*a_turn(), CallEnded(reason="completed", duration_s=9.0)]:
            calls.emit(info, event)

        async def landed() -> bool:
            try:
                return len(await _turns(clickhouse_server)) == 3
            except AssertionError:  # the table is not there until the first batch
                return False

        await wait_for(landed, what="the call's 3 turns in ClickHouse")
    user, reply, reprompt = await _turns(clickhouse_server)
    stage_columns = {f"{s}_ms" for s in TURN_STAGES}
    assert reply["text"] == "Nine to five."
    assert {k: reply[k] for k in stage_columns} == {f"{s}_ms": v for s, v in STAGES_MS.items()}
    assert all(user[k] is None and reprompt[k] is None for k in stage_columns)


async def test_a_version_1_database_migrates_with_its_rows_kept(
    clickhouse_server: ClickHouseServer,
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        ch = ClickHouse(ch_settings(clickhouse_server), http)
        db = ch.database
        # What a node of schema version 1 left: its tables, its version, a turn row.
        await ch.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
        await ch.execute(
            f"CREATE TABLE {db}.schema_versions (version UInt32, applied_at DateTime)"
            " ENGINE = MergeTree ORDER BY version"
        )
        for statement in MIGRATIONS[1](db):
            await ch.execute(statement)
        await ch.insert("schema_versions", [{"version": 1, "applied_at": "2026-11-01 00:00:00"}])
        old = {"call_id": "old", "tenant_id": "demo", "seq": 1, "turn": 1, "role": "agent"}
        old |= {"text": "hi", "interrupted": 0, "at": "2026-11-01 10:00:00", "version": 1}
        await ch.insert("turns", [old])
        # A node stopped after version 2's ALTER, before recording it: the ALTER ran already.
        for statement in MIGRATIONS[2](db):
            await ch.execute(statement)

        assert await migrate(ch) == list(range(2, SCHEMA_VERSION + 1))
        assert await migrate(ch) == []
    (row,) = await _turns(clickhouse_server)
    assert row["call_id"] == "old" and row["text"] == "hi"
    assert all(row[f"{s}_ms"] is None for s in TURN_STAGES)
