"""`voicenode-bench analytics` on tiny sizes against a real clickhouse-server (18.16): the report's
fields, and the rows in ClickHouse against the rows the bench says it sent. Speed is reported by
the bench, never asserted here."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from bench.analytics import GROUP_BYS, INGEST_DB, SUMMARY_DB
from bench.analytics_data import CHUNK_CALLS, TENANTS, Workload, generate, turn_counts
from bench.cli import main
from control_api.analytics.events import TranscriptFinalEvent, decode_event
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server

__all__ = ["clickhouse_server"]

CALLS, TURNS, SUMMARY_TURNS, RUNS = 200, 2_000, 3_000, 2


def test_turns_add_up_and_every_call_has_one() -> None:
    counts = turn_counts(37, 500, random.Random(1))
    assert sum(counts) == 500 and min(counts) >= 1
    with pytest.raises(ValueError):
        turn_counts(10, 9, random.Random(1))


def test_the_workload_is_the_seeds_and_each_call_is_whole() -> None:
    workload = Workload(calls=CHUNK_CALLS + 5, turns=1_000, seed=7)
    chunks = list(generate(workload))
    again = list(generate(workload))
    assert [r.payload for c in chunks for r in c.events] == [
        r.payload for c in again for r in c.events
    ]
    events = [r for c in chunks for r in c.events]
    types = Counter(r.type for r in events)
    assert types["call.started"] == types["call.ended"] == workload.calls
    assert types["transcript.final"] == workload.turns
    records = {r.id: r for c in chunks for r in c.records}
    assert len(records) == workload.calls and {r.tenant_id for r in records.values()} <= set(
        TENANTS
    )
    by_call: dict[str, list[int]] = {}
    for row in events:
        by_call.setdefault(row.call_id, []).append(row.seq)
    assert all(seqs == list(range(len(seqs))) for seqs in by_call.values())  # in order
    lines: dict[str, list[tuple[str, str, bool]]] = {}
    for row in events:
        if row.type == "transcript.final":
            event = decode_event(row.payload)
            assert isinstance(event, TranscriptFinalEvent)
            lines.setdefault(row.call_id, []).append((event.text, event.at, event.interrupted))
    for call_id, record in records.items():  # its transcript: the call's transcript.final lines
        assert record.transcript is not None
        assert [(x["text"], x["at"], x["interrupted"]) for x in record.transcript] == lines[call_id]


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    argv = ["analytics", "--out", str(tmp_path), "--calls", "10", "--turns", "5"]
    assert main(argv) == 2


async def _count(server: ClickHouseServer, database: str, table: str) -> int:
    return int(await server.query(f"SELECT count() FROM {database}.{table} FINAL"))


async def test_tiny_bench_lands_every_row_and_reports(
    clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    argv = ["analytics", "--out", str(out), "--url", clickhouse_server.url]
    argv += ["--calls", str(CALLS), "--turns", str(TURNS), "--summary-turns", str(SUMMARY_TURNS)]
    argv += ["--summary-runs", str(RUNS), "--batch-size", "1000"]  # several batches
    assert await asyncio.to_thread(main, argv) == 0  # its own event loop, as from the shell

    report = json.loads((out / "report.json").read_text())
    assert report["bench"] == "analytics" and report["rows_match"] is True
    assert report["clickhouse"]["version"].startswith("18.16")
    assert {"cpu_count", "cpu_model", "python", "load_avg_1m"} <= set(report["machine"])
    assert report["params"]["batch_size"] == 1000 and report["params"]["days"] == 30
    summary_calls = SUMMARY_TURNS * CALLS // TURNS
    for key, database, calls, turns in (
        ("ingest", INGEST_DB, CALLS, TURNS),
        ("summary_data", SUMMARY_DB, summary_calls, SUMMARY_TURNS),
    ):
        phase = report[key]
        assert phase["rows_sent"] == {"calls": calls, "turns": turns}
        assert phase["rows_in_clickhouse"] == phase["rows_sent"]
        assert phase["refused"] == 0 and phase["database"] == database
        assert phase["outbox_events"] > calls + turns  # call.started and tool.called go too
        assert phase["batches"] == -(-phase["outbox_events"] // 1000)
        assert phase["rows_per_s"] > 0 and all(v > 0 for v in phase["insert_rows_per_s"].values())
        # counted here, apart from the bench
        assert await _count(clickhouse_server, database, "calls") == calls
        assert await _count(clickhouse_server, database, "turns") == turns

    queries = report["summary"]["queries"]
    assert {(q["tenant"], q["group_by"]) for q in queries} == {
        (t, g) for t in TENANTS for g in GROUP_BYS
    }
    by_tenant = Counter({q["tenant"]: q["calls"] for q in queries if q["group_by"] == "day"})
    assert sum(by_tenant.values()) == summary_calls  # every call is in its tenant's 30 days
    assert all(q["p50_ms"] <= q["p95_ms"] <= q["max_ms"] for q in queries)
    assert report["summary"]["runs"] == RUNS
    assert set(report["goals"]) == {"ingest_rows_per_s", "summary_p95_ms"}
    assert all(isinstance(g["met"], bool) for g in report["goals"].values())
    markdown = (out / "report.md").read_text()
    assert "rows/s through the sink" in markdown and "| acme-clinics | day |" in markdown
