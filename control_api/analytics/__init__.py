"""Analytics: call records and outcomes, an event outbox, and its relay to a Redis Stream and
tenants' webhooks — events are never lost, only delivered late (at least once).

`open_analytics(settings, store, calls, clock)` is the one entry point: it closes this node's
calls left open by a crash (as failed), subscribes the recorder to the node's live calls, and
runs the writer, the relay, the sweeper, the backlog meter (`analytics.backlog`), with
ClickHouse the retention of tenants' months (`analytics.retention`) and, when set, the
outbox's retention (`OutboxRetention`) as owned tasks until it exits. Analytics knows nothing
about HTTP: the routes that read it (`/v1/webhooks`, `/v1/calls` history, `WS /v1/events`)
import `Analytics`, and the app assembles them (`control_api.app`).

The tables (`analytics.tables`) come from migration `0002_calls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import httpx

from config.schema import Settings
from control_api.analytics.backlog import meter
from control_api.analytics.batches import BatchSink, Lane
from control_api.analytics.chsink import ClickHouseSink, open_clickhouse_lane
from control_api.analytics.clickhouse import ClickHouse, ClickHouseError
from control_api.analytics.feed import LiveFeed
from control_api.analytics.outbox import recover_unfinished
from control_api.analytics.recorder import AgentLookup, AgentRef, CallEventRecorder, agent_from_uri
from control_api.analytics.relay import Relay
from control_api.analytics.retention import OutboxRetention, Retention
from control_api.analytics.sinks import RedisStreamSink, TenantUrls, open_stream_sink
from control_api.store import Store
from media.call import CallInfo
from media.clock import Clock, MonotonicClock
from pipeline.events import CallEvent

log = logging.getLogger(__name__)

__all__ = ["AgentRef", "Analytics", "CallSource", "open_analytics", "utc_now"]

WRITER_DRAIN_S = 10.0
"""On exit, how long the writer may take to write what is queued."""
FINAL_RELAY_S = 3.0
"""On exit, how long a last relay pass may take (what is left goes out after the restart)."""


class CallSource(Protocol):
    """What analytics needs from `LiveCalls`."""

    def subscribe(self, listener: Callable[[CallInfo, CallEvent], None]) -> Callable[[], None]: ...

    def get(self, call_id: str) -> Any: ...


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Analytics:
    """The running analytics of a node (what the routes need)."""

    settings: Settings
    store: Store
    recorder: CallEventRecorder
    relay: Relay
    feed: LiveFeed
    wall: Callable[[], datetime.datetime]
    clickhouse: ClickHouse | None = None
    """The ClickHouse analytics store, when configured (the summary queries it)."""

    @property
    def node(self) -> str:
        return self.settings.node.name


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _migrate_at_start(sink: ClickHouseSink) -> None:
    """A database of a newer schema stops the start (`ClickHouseSchemaError`, exit 2); an
    unreachable server does not: the sink migrates before its first batch."""
    try:
        await sink.migrate()
    except ClickHouseError as exc:
        log.warning("clickhouse unreachable at start; migrating later", extra={"error": exc.detail})


async def _sweep(
    recorder: CallEventRecorder, calls: CallSource, clock: Clock, every_s: float
) -> None:
    while True:
        await clock.sleep_until(clock.now() + every_s)
        recorder.sweep(lambda call_id: calls.get(call_id) is not None)


def _watch(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    store: Store,
    relay: Relay,
    sinks: list[str],
    ch_sink: BatchSink | None,
    clock: Clock,
    wall: Callable[[], datetime.datetime],
) -> None:
    """Start the backlog meter and, with ClickHouse, the retention task, and the outbox's
    retention (`analytics.outbox_retention_hours`); `stack` stops them."""
    loop = asyncio.get_running_loop()
    every_s = settings.analytics.relay_interval_s
    metering = meter(
        store, settings.node.name, sinks, clock=clock, wall=wall, every_s=every_s, floor=relay.floor
    )
    stack.push_async_callback(_stop, loop.create_task(metering, name="analytics-backlog-meter"))
    if isinstance(ch_sink, ClickHouseSink):
        retention = Retention(store, ch_sink.ch, wall).run(clock)
        stack.push_async_callback(_stop, loop.create_task(retention, name="analytics-retention"))
    if hours := settings.analytics.outbox_retention_hours:
        pruning = OutboxRetention(store, settings.node.name, sinks, hours, wall).run(clock)
        stack.push_async_callback(_stop, loop.create_task(pruning, name="outbox-retention"))


async def _open_sinks(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    store: Store,
    http: httpx.AsyncClient | None,
) -> tuple[RedisStreamSink | None, httpx.AsyncClient, Lane | None, BatchSink | None]:
    """The Redis stream sink, the webhooks' HTTP client (`http`, or one of its own) and the
    ClickHouse lane with its sink (migrated, or to migrate before its first batch); `stack`
    closes them."""
    stream = open_stream_sink(settings.analytics)
    if stream is not None:
        stack.push_async_callback(stream.aclose)
    if http is None:
        http = await stack.enter_async_context(
            httpx.AsyncClient(follow_redirects=False, trust_env=False)
        )
    clickhouse = settings.analytics.clickhouse
    lane, ch_sink = None, None
    if clickhouse.url:
        chttp = await stack.enter_async_context(httpx.AsyncClient(trust_env=False))
        lane = open_clickhouse_lane(clickhouse, store, chttp)
        ch_sink = lane.sink if lane is not None else None
    if isinstance(ch_sink, ClickHouseSink):
        await _migrate_at_start(ch_sink)
    return stream, http, lane, ch_sink


async def _recover(store: Store, node: str, wall: Callable[[], datetime.datetime]) -> None:
    recovered = await recover_unfinished(store, node, wall)
    if recovered:
        log.warning("calls of a stopped node closed as failed", extra={"count": len(recovered)})


def _start(
    recorder: CallEventRecorder, relay: Relay, calls: CallSource, clock: Clock, settings: Settings
) -> tuple[asyncio.Task[None], asyncio.Task[None], asyncio.Task[None]]:
    """The writer, the relay and the sweeper of calls that vanished, as owned tasks."""
    loop = asyncio.get_running_loop()
    writer = loop.create_task(recorder.run_writer(), name="analytics-writer")
    relaying = loop.create_task(relay.run(), name="analytics-relay")
    sweeper = loop.create_task(
        _sweep(recorder, calls, clock, settings.analytics.relay_interval_s),
        name="analytics-sweeper",
    )
    return writer, relaying, sweeper


async def _drain(
    settings: Settings,
    recorder: CallEventRecorder,
    writer: asyncio.Task[None],
    relay: Relay,
    relaying: asyncio.Task[None],
) -> None:
    """Write what is queued (calls still open as interrupted), then one last relay pass."""
    try:
        async with asyncio.timeout(settings.analytics.outcome_timeout_s + WRITER_DRAIN_S):
            await recorder.close()
            await asyncio.shield(writer)
    except TimeoutError:
        log.error(
            "analytics writer did not drain in time; calls left open are closed as "
            "failed at the next start"
        )
    finally:
        await recorder.abort()
        await _stop(writer)
    relay.stop()
    try:
        async with asyncio.timeout(FINAL_RELAY_S):
            await asyncio.shield(relaying)
    except TimeoutError:
        log.warning("relay pass did not finish in time; the outbox keeps the rest")
    finally:
        await _stop(relaying)
    try:
        async with asyncio.timeout(FINAL_RELAY_S):
            await relay.pass_once()
    except TimeoutError:
        log.warning("last relay pass cut short; the outbox keeps the rest")
    except Exception:
        log.exception("last relay pass failed; the outbox keeps the rest")


@contextlib.asynccontextmanager
async def open_analytics(
    settings: Settings,
    store: Store,
    calls: CallSource,
    clock: Clock | None = None,
    *,
    agents: AgentLookup = agent_from_uri,
    wall: Callable[[], datetime.datetime] = utc_now,
    env: Mapping[str, str] | None = None,
    http: httpx.AsyncClient | None = None,
    urls: TenantUrls | None = None,
) -> AsyncIterator[Analytics]:
    """Record `calls` and relay their events while entered (see the module docstring).

    `urls`: where webhooks may go, read on each relay pass (the node's, which a reload
    replaces); None: `analytics.url_allowlist` and `http` as they are now.

    Exit after the calls have ended (the node's `LiveCalls.shutdown`): calls still open are
    recorded as interrupted, what is queued is written, one last relay pass is tried.
    """
    clock = clock or MonotonicClock()
    node = settings.node.name
    await _recover(store, node, wall)
    async with contextlib.AsyncExitStack() as stack:
        stream, http, lane, ch_sink = await _open_sinks(stack, settings, store, http)
        feed = LiveFeed()
        relay = Relay(
            settings.analytics,
            store=store,
            node=node,
            clock=clock,
            wall=wall,
            http=http,
            stream=stream,
            urls=urls,
            lanes=[lane] if lane is not None else [],
        )
        recorder = CallEventRecorder(
            settings.analytics, store=store, node=node, clock=clock, wall=wall, agents=agents,
            feed=feed, env=os.environ if env is None else env, on_written=relay.wake,
        )  # fmt: skip
        writer, relaying, sweeper = _start(recorder, relay, calls, clock, settings)
        sinks = [s.key for s in (stream, ch_sink) if s is not None]
        _watch(stack, settings, store, relay, sinks, ch_sink, clock, wall)
        unsubscribe = calls.subscribe(recorder.on_call_event)
        try:
            yield Analytics(
                settings=settings,
                store=store,
                recorder=recorder,
                relay=relay,
                feed=feed,
                wall=wall,
                clickhouse=ch_sink.ch if isinstance(ch_sink, ClickHouseSink) else None,
            )
        finally:
            unsubscribe()
            await _stop(sweeper)
            await _drain(settings, recorder, writer, relay, relaying)
