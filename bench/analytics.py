"""`voicenode-bench analytics`: calls and turns through the node's ClickHouse sink into a real
ClickHouse, and the tenant summary query's latency (issue 23).

    voicenode-bench analytics --out DIR [--url URL] [--calls N] [--turns N]
                              [--summary-turns N] [--summary-runs N] [--batch-size N] [--seed N]

Without `--url` it starts its own `clickhouse-server` (`bench.ch_server`: free 127.0.0.1
ports, a temporary directory, stopped and removed at the end). With `--url` it uses that
server and drops and recreates the databases `voicenode_bench_ingest` and
`voicenode_bench_summary` there (nothing else is touched).

Ingest: `--calls` calls of several tenants over 30 days with `--turns` transcript lines in all
(`bench.analytics_data`, one seed gives the same rows) go through `ClickHouseSink.send_batch`,
the node's own code: events decoded, call records read from the node's SQL store (SQLite in a
temporary directory, filled before the batch that needs them, untimed), rows inserted as
`JSONEachRow` over HTTP. Batches are what the relay hands the sink: outbox rows in order,
`[analytics.clickhouse] batch_size` at a time (50,000, or `--batch-size`), every event type
mixed (those the sink has no row for count as delivered); a batch ClickHouse does not take is
sent again after the relay's backoff. What is left out of the node's path: reading the outbox
from the SQL store and moving the relay's marks after each batch. Reported: rows/s through the
sink (`calls` + `turns` rows over the time spent in `send_batch`) and each table's rows/s over
its inserts alone; then the rows in ClickHouse (`FINAL`) against the rows sent.

Summary: `--summary-turns` lines (calls in the same ratio as above) go through the sink the
same way into their own database; then the node's summary query (`summary.from_clickhouse`:
30 days, per tenant, grouped by day, agent, disposition and transport) runs once to warm up
and `--summary-runs` times timed, per tenant and grouping: p50/p95. The summary reads the
`calls` table (one row per call); the turns are there as the node would have them.

Goals (issue 23, this 2-core machine): ≥ 50,000 rows/s through the sink, summary p95 ≤ 300 ms
(reported, not asserted). Exit status: 0 when the rows in ClickHouse match the rows sent, 1
when not, 2 on bad arguments or a server that cannot be started or reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple, get_args

import httpx
import msgspec

from bench.analytics_data import END, TENANTS, Workload, generate
from bench.analytics_report import build_report, percentile_ms
from bench.ch_server import HAVE_CLICKHOUSE, ClickHouseServer, ClickHouseServerError
from bench.report import machine_info
from config.clickhouse import ClickHouseSettings
from control_api.analytics.chsink import ClickHouseSink
from control_api.analytics.clickhouse import ClickHouse, ClickHouseError
from control_api.analytics.sinks import DeliveryError
from control_api.analytics.summary import GroupBy, from_clickhouse
from control_api.analytics.tables import OutboxRow
from control_api.store import Base, Store, open_store

INGEST_DB: Final = "voicenode_bench_ingest"
SUMMARY_DB: Final = "voicenode_bench_summary"
MAX_TRIES: Final = 5
"""A batch ClickHouse did not take (`DeliveryError`) is sent again, as the relay does."""
GROUP_BYS: Final[tuple[GroupBy, ...]] = get_args(GroupBy)
FAILURES: Final = (ClickHouseServerError, ClickHouseError, DeliveryError, OSError)
"""What stops the bench: no server, or one that does not answer or take the rows."""

Progress = Callable[[str], None]


class Options(NamedTuple):
    url: str | None = None
    """A running ClickHouse's HTTP interface; None: start one."""
    calls: int = 10_000
    turns: int = 200_000
    summary_turns: int = 1_000_000
    summary_runs: int = 20
    seed: int = 23
    batch_size: int | None = None
    """Outbox rows per batch; None: the node's default (`[analytics.clickhouse] batch_size`)."""


class _TimedClickHouse(ClickHouse):
    """The node's client; the time spent in each table's inserts is added up."""

    def __init__(self, settings: ClickHouseSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self.insert_s: dict[str, float] = {"calls": 0.0, "turns": 0.0}

    async def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        began = time.perf_counter()
        try:
            await super().insert(table, rows)
        finally:
            self.insert_s[table] = self.insert_s.get(table, 0.0) + time.perf_counter() - began


async def _count(ch: ClickHouse, table: str) -> int:
    rows = await ch.select(f"SELECT count() AS n FROM {ch.database}.{table} FINAL")
    return int(rows[0]["n"])


async def _parts(ch: ClickHouse) -> dict[str, int]:
    rows = await ch.select(
        "SELECT table, count() AS parts FROM system.parts"
        f" WHERE database = '{ch.database}' AND active GROUP BY table"
    )
    return {str(row["table"]): int(row["parts"]) for row in rows}


class _Phase:
    """One database's ingest through the sink: what was sent, the time in `send_batch`."""

    def __init__(self, ch: _TimedClickHouse, store: Store, settings: ClickHouseSettings) -> None:
        self.ch = ch
        self.store = store
        self.sink = ClickHouseSink(ch, store)
        self.settings = settings
        self.batch_size = settings.batch_size
        self.sent = {"calls": 0, "turns": 0}
        self.events = self.batches = self.retries = 0
        self.refused: list[str] = []
        self.sink_s = 0.0

    async def send(self, rows: list[OutboxRow]) -> None:
        for attempt in range(1, MAX_TRIES + 1):
            began = time.perf_counter()
            try:
                refused = await self.sink.send_batch(rows)
            except DeliveryError:
                self.sink_s += time.perf_counter() - began
                if attempt == MAX_TRIES:
                    raise
                self.retries += 1
                backoff = self.settings.backoff_s * 2 ** (attempt - 1)
                await asyncio.sleep(min(backoff, self.settings.backoff_max_s))  # as the relay
                continue
            self.sink_s += time.perf_counter() - began
            break
        self.refused += [r.reason for r in refused]
        self.batches += 1
        self.events += len(rows)
        self.sent["calls"] += sum(1 for r in rows if r.type == "call.ended")
        self.sent["turns"] += sum(1 for r in rows if r.type == "transcript.final")

    async def run(self, workload: Workload) -> None:
        pending: list[OutboxRow] = []
        for chunk in generate(workload):
            async with self.store.session() as session:
                session.add_all(chunk.records)
            pending += chunk.events
            while len(pending) >= self.batch_size:
                batch, pending = pending[: self.batch_size], pending[self.batch_size :]
                await self.send(batch)
        if pending:
            await self.send(pending)

    async def report(self, workload: Workload, wall_s: float) -> dict[str, Any]:
        landed = {table: await _count(self.ch, table) for table in ("calls", "turns")}
        rows = self.sent["calls"] + self.sent["turns"]
        insert_s = self.ch.insert_s
        return {
            "database": self.ch.database,
            "calls": workload.calls,
            "turns": workload.turns,
            "outbox_events": self.events,
            "batches": self.batches,
            "batch_size": self.batch_size,
            "retries": self.retries,
            "refused": len(self.refused),
            "refusal_reasons": sorted(set(self.refused))[:5],
            "rows_sent": dict(self.sent),
            "rows_in_clickhouse": landed,
            "rows_match": landed == self.sent,
            "sink_s": round(self.sink_s, 3),
            "rows_per_s": round(rows / self.sink_s) if self.sink_s else None,
            "insert_s": {t: round(s, 3) for t, s in insert_s.items()},
            "insert_rows_per_s": {
                t: round(self.sent[t] / insert_s[t]) if insert_s.get(t) else None
                for t in ("calls", "turns")
            },
            "active_parts": await _parts(self.ch),
            "wall_s": round(wall_s, 3),
        }


async def _open_store(path: Path) -> Store:
    store = open_store(f"sqlite+aiosqlite:///{path}")
    async with store.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return store


async def ingest(
    http: httpx.AsyncClient, settings: ClickHouseSettings, workload: Workload, workdir: Path
) -> tuple[dict[str, Any], ClickHouse]:
    """`workload` through a fresh sink into a fresh `settings.database`; its report and the
    client."""
    database = settings.database
    ch = _TimedClickHouse(settings, http)
    await ch.execute(f"DROP DATABASE IF EXISTS {database}")
    store = await _open_store(workdir / f"{database}.db")
    try:
        phase = _Phase(ch, store, settings)
        await phase.sink.migrate()
        ch.insert_s = {"calls": 0.0, "turns": 0.0}  # the migration's own inserts left out
        began = time.perf_counter()
        await phase.run(workload)
        return await phase.report(workload, time.perf_counter() - began), ch
    finally:
        await store.close()


async def time_summary(ch: ClickHouse, workload: Workload, runs: int) -> dict[str, Any]:
    """The node's summary query per tenant and grouping over the workload's days."""
    lo, hi = END - datetime.timedelta(days=workload.days), END
    queries: list[dict[str, Any]] = []
    for tenant in TENANTS:
        for group_by in GROUP_BYS:
            groups = await from_clickhouse(ch, tenant, lo, hi, group_by)  # warm-up, not counted
            times = []
            for _ in range(runs):
                began = time.perf_counter()
                await from_clickhouse(ch, tenant, lo, hi, group_by)
                times.append((time.perf_counter() - began) * 1000)
            queries.append(
                {
                    "tenant": tenant,
                    "group_by": group_by,
                    "calls": sum(g.calls for g in groups),
                    "groups": len(groups),
                    "p50_ms": percentile_ms(times, 0.5),
                    "p95_ms": percentile_ms(times, 0.95),
                    "max_ms": round(max(times), 2),
                }
            )
    return {
        "runs": runs,
        "from": lo.isoformat(),
        "to": hi.isoformat(),
        "queries": queries,
        "p95_ms_worst": max(q["p95_ms"] for q in queries),
        "p50_ms_worst": max(q["p50_ms"] for q in queries),
    }


@contextlib.asynccontextmanager
async def _clickhouse(url: str | None, workdir: Path) -> AsyncIterator[str]:
    if url:
        yield url
        return
    if not HAVE_CLICKHOUSE:
        raise ClickHouseServerError("clickhouse-server is not installed (make system-packages)")
    directory = workdir / "clickhouse"
    directory.mkdir()
    server = ClickHouseServer(directory)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


def _quiet(_message: str) -> None:
    pass


async def run(args: Options, progress: Progress = _quiet) -> dict[str, Any]:
    """The whole bench; the report (see `bench.analytics_report` for its fields)."""
    work = Workload(args.calls, args.turns, seed=args.seed)
    summary_calls = max(1, round(args.summary_turns * args.calls / args.turns))  # same ratio
    summary_work = Workload(summary_calls, args.summary_turns, seed=args.seed + 1)
    machine = machine_info()
    workdir = Path(tempfile.mkdtemp(prefix="voicenode-bench-analytics-"))
    try:
        async with (
            _clickhouse(args.url, workdir) as url,
            httpx.AsyncClient(trust_env=False) as http,
        ):

            def settings(database: str) -> ClickHouseSettings:
                node = ClickHouseSettings(url=url, database=database)
                return msgspec.structs.replace(node, batch_size=args.batch_size or node.batch_size)

            version = await ClickHouse(settings("default"), http).select("SELECT version() AS v")
            progress(f"ingest: {work.calls} calls, {work.turns} turns through the sink")
            ingested, _ = await ingest(http, settings(INGEST_DB), work, workdir)
            progress(f"summary data: {summary_work.calls} calls, {summary_work.turns} turns")
            loaded, ch = await ingest(http, settings(SUMMARY_DB), summary_work, workdir)
            progress(f"summary query: {args.summary_runs} runs per tenant and grouping")
            summary = await time_summary(ch, summary_work, args.summary_runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    params = args._asdict() | {"days": work.days, "tenants": TENANTS}
    params["batch_size"] = ingested["batch_size"]
    del params["url"]
    server = {"version": str(version[0]["v"]), "server": args.url or "started by the bench"}
    return build_report(machine, server, params, ingested, loaded, summary)
