"""The ClickHouse sink against a real clickhouse-server (Debian's 18.16): migrations, calls and
turns from the outbox, a retried batch counted once with FINAL, an outage that loses nothing,
a refused row in the dead letters while the rest of its batch lands."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from config.clickhouse import ClickHouseSettings
from config.loader import ConfigError, load_settings
from config.schema import Settings
from control_api.analytics import open_analytics
from control_api.analytics.chsink import ClickHouseSink
from control_api.analytics.clickhouse import (
    SCHEMA_VERSION,
    ClickHouse,
    ClickHouseSchemaError,
    migrate,
    to_datetime,
)
from control_api.analytics.events import TranscriptFinalEvent
from control_api.analytics.outbox import write_events
from control_api.analytics.tables import DeadLetterRow, OutboxRow
from control_api.store import Store
from tests.support.analytics import (
    FakeCalls,
    WallClock,
    call_info,
    closing,
    opening,
    settings,
    store,
    wait_for,
)
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server

__all__ = ["clickhouse_server", "store"]


def ch_settings(server: ClickHouseServer, **extra: object) -> ClickHouseSettings:
    values: dict[str, object] = {
        "url": server.url,
        "flush_interval_s": 0.05,
        "backoff_s": 0.05,
        "backoff_max_s": 0.2,
        "timeout_s": 5.0,
    }
    return ClickHouseSettings(**(values | extra))  # type: ignore[arg-type]


async def count(server: ClickHouseServer, table: str, final: bool = True) -> int:
    text = await server.query(f"SELECT count() FROM voicenode.{table}{' FINAL' if final else ''}")
    return int(text.strip())


async def table_exists(server: ClickHouseServer, table: str) -> bool:
    text = await server.query(f"EXISTS TABLE voicenode.{table}")
    return text.strip() == "1"


async def test_migrations_create_the_tables_and_a_second_run_is_a_no_op(
    clickhouse_server: ClickHouseServer,
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        ch = ClickHouse(ch_settings(clickhouse_server), http)
        assert await migrate(ch) == list(range(1, SCHEMA_VERSION + 1))
        for table in ("calls", "turns", "schema_versions"):
            assert await table_exists(clickhouse_server, table), table
        assert await migrate(ch) == []
    assert await count(clickhouse_server, "schema_versions", final=False) == SCHEMA_VERSION


async def test_a_schema_version_the_node_does_not_know_is_refused(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        ch = ClickHouse(ch_settings(clickhouse_server), http)
        await migrate(ch)
        await ch.insert("schema_versions", [{"version": 99, "applied_at": "2026-01-01 00:00:00"}])
        with pytest.raises(ClickHouseSchemaError, match="schema version 99"):
            await migrate(ch)
    conf = settings(clickhouse=ch_settings(clickhouse_server))
    # A ConfigError at start: `voicenode serve` exits 2 with its message.
    with pytest.raises(ConfigError, match="schema version 99"):
        async with open_analytics(conf, store, FakeCalls(), wall=WallClock()):
            pass


def with_clickhouse(server: ClickHouseServer, **extra: object) -> Settings:
    return settings(relay_interval_s=0.05, clickhouse=ch_settings(server, **extra))


async def run_call(calls: FakeCalls, call_id: str, tenant: str = "demo") -> None:
    info = call_info(call_id, tenant=tenant)
    for event in [*opening(), *closing()]:
        calls.emit(info, event)


async def test_events_land_as_rows_and_a_retried_batch_counts_once(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    calls = FakeCalls()
    conf = with_clickhouse(clickhouse_server)
    async with open_analytics(conf, store, calls, wall=WallClock()) as analytics:
        await run_call(calls, "c1")
        await run_call(calls, "c2", tenant="other")

        async def landed() -> bool:
            return (
                await count(clickhouse_server, "calls") == 2
                and await count(clickhouse_server, "turns") == 4
            )

        await wait_for(landed, what="2 calls and 4 turns in ClickHouse")
        assert analytics.clickhouse is not None
        text = await clickhouse_server.query(
            "SELECT * FROM voicenode.calls FINAL WHERE call_id = 'c1' FORMAT JSONEachRow"
        )
        row = json.loads(text)
        assert row["tenant_id"] == "demo" and row["agent"] == "receptionist"
        assert row["disposition"] and row["duration_s"] == 42.0 and row["turns"] == 2
        assert row["v2v_p50_ms"] == 640.0 and row["transport"] == "sip"
        turns = await clickhouse_server.query(
            "SELECT role, text FROM voicenode.turns FINAL WHERE call_id = 'c1' ORDER BY seq"
            " FORMAT JSONEachRow"
        )
        assert [json.loads(line) for line in turns.splitlines()] == [
            {"role": "user", "text": "hello I'd like to book, thanks"},
            {"role": "agent", "text": "Sure, what day?"},
        ]
        # The same batch again (a retry after a lost acknowledgement): counted once with FINAL.
        async with store.session() as session:
            rows = list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())
        sink = ClickHouseSink(analytics.clickhouse, store)
        assert await sink.send_batch(rows) == []
        assert await count(clickhouse_server, "calls", final=False) == 4
        assert await count(clickhouse_server, "calls") == 2
        assert await count(clickhouse_server, "turns") == 4


async def test_an_outage_loses_nothing_and_the_backlog_lands_once(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    calls = FakeCalls()
    conf = with_clickhouse(clickhouse_server)
    async with open_analytics(conf, store, calls, wall=WallClock()) as analytics:
        await run_call(calls, "before")
        await wait_for(
            lambda: _equals(clickhouse_server, "calls", 1), what="the first call in ClickHouse"
        )
        await clickhouse_server.stop()
        for n in range(3):
            await run_call(calls, f"during-{n}")

        async def failing() -> bool:
            return analytics.relay.stream_failing

        await wait_for(failing, what="the sink failing while ClickHouse is down")
        await clickhouse_server.start()

        async def recovered() -> bool:
            return not analytics.relay.stream_failing and await _equals(
                clickhouse_server, "calls", 4
            )

        await wait_for(recovered, timeout_s=20, what="the backlog landing after the restart")
    # Once: not only with FINAL, also before any merge.
    assert await count(clickhouse_server, "calls", final=False) == 4
    assert await count(clickhouse_server, "turns", final=False) == 8


async def _equals(server: ClickHouseServer, table: str, n: int) -> bool:
    try:
        return await count(server, table) == n
    except (httpx.HTTPError, AssertionError):
        return False


async def test_a_refused_row_goes_to_the_dead_letters_and_the_rest_lands(
    clickhouse_server: ClickHouseServer, store: Store
) -> None:
    good = [
        TranscriptFinalEvent(
            id=f"x:{seq}",
            call_id="x",
            tenant_id="demo",
            seq=seq,
            at="2026-12-01T10:00:00.000Z",
            role="user",
            text=f"line {seq}",
            turn=turn,
        )
        for seq, turn in ((0, 1), (1, 2), (2, -1), (3, 3), (4, 4))  # turn -1: not a UInt32
    ]
    async with store.session() as session:
        await write_events(session, good, "node-test")
    conf = with_clickhouse(clickhouse_server)
    async with open_analytics(conf, store, FakeCalls(), wall=WallClock()) as analytics:

        async def dead() -> bool:
            async with store.session() as session:
                rows = (await session.scalars(select(DeadLetterRow))).all()
            return len(rows) == 1

        await wait_for(dead, what="the refused row dead-lettered")
        await wait_for(lambda: _equals(clickhouse_server, "turns", 4), what="the other 4 rows")
        assert not analytics.relay.stream_failing
    async with store.session() as session:
        letter = (await session.scalars(select(DeadLetterRow))).one()
    assert letter.sink == "clickhouse" and letter.event_id == "x:2"
    assert "refused" in letter.error and "turn" in letter.error and "line" not in letter.error
    texts = await clickhouse_server.query("SELECT text FROM voicenode.turns FINAL ORDER BY seq")
    assert texts.split() == ["line", "0", "line", "1", "line", "3", "line", "4"]


def test_the_password_comes_from_the_environment_only(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[analytics.clickhouse]\nurl = "http://127.0.0.1:8123"\npassword = "pw"\n')
    with pytest.raises(ConfigError, match="VOICENODE_ANALYTICS__CLICKHOUSE__PASSWORD") as err:
        load_settings(path, env={})
    assert "pw" not in str(err.value)
    path.write_text('[analytics.clickhouse]\nurl = "http://127.0.0.1:8123"\n')
    loaded = load_settings(path, env={"VOICENODE_ANALYTICS__CLICKHOUSE__PASSWORD": "pw"})
    assert loaded.analytics.clickhouse.password == "pw"
    assert "pw" not in repr(loaded.analytics.clickhouse)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-05T12:34:56+00:00", "2026-10-05 12:34:56"),
        ("2026-10-05T12:34:56.999999+00:00", "2026-10-05 12:34:56"),
        ("2026-10-05T12:34:56.5Z", "2026-10-05 12:34:56"),
        ("2026-10-05T23:34:56-02:00", "2026-10-06 01:34:56"),
        ("2026-10-05T00:30:00.25+01:00", "2026-10-04 23:30:00"),
    ],
)
def test_event_times_become_utc_whole_seconds(text: str, expected: str) -> None:
    assert to_datetime(text) == expected
