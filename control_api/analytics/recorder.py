"""The LiveCalls listener that records calls: it turns each call's events into analytics events
and queues them for one writer task, which writes them in batches (one transaction each)
with the call records they change.

The listener runs in the call's path, so it never waits: events go into a bounded queue
(`analytics.queue_size`, 10 000 by default: minutes of events for a full node, so only a
stalled database fills it). When it is full the event is dropped, logged and counted
(`voicenode_analytics_dropped_events_total`) instead of slowing the call down; the writer
retries a failing database with backoff meanwhile.

At a call's end its outcome is extracted in an owned task (an LLM agent asks its model, within
`analytics.outcome_timeout_s`), then `call.ended` is queued. A call that ends without a
`CallEnded` (its task failed) is closed as failed by `sweep`; calls still open when the
recorder closes are closed as `interrupted`.

Personal data is redacted in each call's `CallTrack` by its tenant's policy (the lookup's
`pii`, read when the call started; every kind when the lookup has none), so the outbox, the
call records, the live feed and the outcome model only ever get placeholders.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError

from agents.llm_access import LlmAccess
from agents.outcome import Outcome, extract_outcome, rules_outcome
from agents.pii import ALL_KINDS
from agents.spec import AgentSpec
from config.schema import AnalyticsSettings
from control_api.analytics.events import AnalyticsEvent, CallTrack, event_type
from control_api.analytics.feed import LiveFeed
from control_api.analytics.outbox import write_events
from control_api.store import Store
from core.backoff import backoff
from core.tasks import OwnedTasks
from media.call import CallInfo
from media.clock import Clock
from pipeline.events import CallEnded, CallEvent

log = logging.getLogger(__name__)

DROPPED = Counter(
    "voicenode_analytics_dropped_events",
    "Analytics events dropped because the writer queue was full",
)
OUTCOME_CONCURRENCY = 16
"""Outcomes extracted at the same time (each may wait on a model)."""
WRITE_RETRY_BASE_S = 0.05
WRITE_RETRY_MAX_S = 5.0
"""A failed write is tried again after 0.05 s, doubling up to 5 s (`core.backoff`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class AgentRef:
    """The agent that runs a call, as far as analytics needs it."""

    name: str
    spec: AgentSpec | None = None
    version: int | None = None
    pii: frozenset[str] = ALL_KINDS
    """The kinds of personal data redacted from the call's events (the tenant's policy)."""


class AgentOfCall(Protocol):
    """What the lookup returns: `AgentRef` here, or `control_api.host.AgentRef`."""

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> AgentSpec | None: ...

    @property
    def version(self) -> int | None: ...


AgentLookup = Callable[[CallInfo], AgentOfCall | None]
"""The agent (and version) running a call, asked once at the call's first event."""


def agent_from_uri(info: CallInfo) -> AgentOfCall | None:
    """The default lookup: browser calls are addressed `agent:NAME`."""
    if info.to_uri.startswith("agent:"):
        return AgentRef(name=info.to_uri.removeprefix("agent:"))
    return None


_STOP = None


class CallEventRecorder:
    """A call's events into the store: the call row and the outbox, in one transaction a batch
    (not the call's audio: that is `media.recording_file.CallRecorder`)."""

    def __init__(
        self,
        settings: AnalyticsSettings,
        *,
        store: Store,
        node: str,
        clock: Clock,
        wall: Callable[[], datetime.datetime],
        agents: AgentLookup = agent_from_uri,
        feed: LiveFeed | None = None,
        env: Mapping[str, str] | None = None,
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._node = node
        self._clock = clock
        self._wall = wall
        self._agents = agents
        self._feed = feed
        self._env = env or {}
        self._on_written = on_written
        self._queue: asyncio.Queue[AnalyticsEvent | None] = asyncio.Queue(settings.queue_size)
        self._tracks: dict[str, CallTrack] = {}
        self._specs: dict[str, AgentSpec | None] = {}
        self._access: dict[str, LlmAccess | None] = {}
        """Each call's model key and guard, as the node gave its agent (`llm_access`)."""
        self._outcomes = OwnedTasks(log=log, failed="outcome task failed")
        self._outcome_slots = asyncio.Semaphore(OUTCOME_CONCURRENCY)
        self._closing = False
        self.written = 0
        self.dropped = 0

    @property
    def open_calls(self) -> int:
        return len(self._tracks)

    # ---- the listener (in the call's path: never waits) ----

    def on_call_event(self, info: CallInfo, event: CallEvent) -> None:
        track = self._tracks.get(info.call_id)
        now = self._wall()
        if track is None:
            if self._closing:
                return
            ref = self._agents(info)
            track = CallTrack(
                info,
                agent=ref.name if ref else "",
                agent_version=ref.version if ref else None,
                node=self._node,
                pii=getattr(ref, "pii", ALL_KINDS),
            )
            self._tracks[info.call_id] = track
            self._specs[info.call_id] = ref.spec if ref else None
            self._access[info.call_id] = getattr(ref, "llm_access", None)
            self._put(track.started(now))
        if self._feed is not None:
            self._feed.publish_live(info, track.live(event))
        out = track.feed(event, now)
        if out is not None:
            self._put(out)
        if isinstance(event, CallEnded) and track.ended is event and not self._closing:
            self._outcomes.spawn(self._conclude(track), f"outcome:{info.call_id}")

    def _put(self, event: AnalyticsEvent) -> None:
        if self._feed is not None:
            self._feed.publish_event(event)
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            DROPPED.inc()
            log.error(
                "analytics queue full; event dropped",
                extra={
                    "call_id": event.call_id,
                    "tenant_id": event.tenant_id,
                    "event_id": event.id,
                    "type": event_type(event),
                },
            )

    async def _conclude(self, track: CallTrack) -> None:
        info = track.info
        extra = {"call_id": info.call_id, "tenant_id": info.tenant_id, "agent": track.agent}
        facts = track.facts()
        try:
            async with self._outcome_slots:
                outcome = await extract_outcome(
                    self._specs.get(info.call_id),
                    facts,
                    timeout_s=self._settings.outcome_timeout_s,
                    access=self._access.get(info.call_id),
                    log_extra=extra,
                )
        except Exception:
            log.exception("outcome extraction failed; using rules", extra=extra)
            outcome = rules_outcome(facts)
        self._finish(track, outcome)

    def _finish(self, track: CallTrack, outcome: Outcome, reason: str | None = None) -> None:
        if track.closed:
            return
        self._put(track.end(outcome, self._wall(), reason=reason))
        self._tracks.pop(track.info.call_id, None)
        self._specs.pop(track.info.call_id, None)
        self._access.pop(track.info.call_id, None)

    def sweep(self, is_live: Callable[[str], bool]) -> list[str]:
        """Close calls that are gone without a `CallEnded` (their task failed) as failed."""
        gone = [
            t
            for t in self._tracks.values()
            if t.ended is None and not t.closed and not is_live(t.info.call_id)
        ]
        for track in gone:
            self._finish(track, rules_outcome(track.facts("failed")), reason="failed")
        return [t.info.call_id for t in gone]

    # ---- the writer (one owned task) ----

    async def run_writer(self) -> None:
        """Write queued events in batches until `close()` queues the stop marker."""
        batch_size = self._settings.write_batch_size
        while True:
            item = await self._queue.get()
            batch: list[AnalyticsEvent] = []
            while item is not _STOP:
                batch.append(item)
                if len(batch) >= batch_size or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                await self._write(batch)
            if item is _STOP:
                return

    async def _write(self, batch: list[AnalyticsEvent]) -> None:
        failures = 0
        while True:
            try:
                async with self._store.session() as session:
                    await write_events(session, batch, self._node)
            except IntegrityError:
                if len(batch) > 1:
                    for event in batch:
                        await self._write([event])
                    return
                event = batch[0]
                log.error(
                    "analytics event already written; skipped",
                    extra={"call_id": event.call_id, "event_id": event.id},
                )
                return
            except Exception as exc:
                failures += 1
                delay = backoff(failures, WRITE_RETRY_BASE_S, WRITE_RETRY_MAX_S)
                log.error(
                    "analytics write failed; retrying",
                    extra={"error": type(exc).__name__, "events": len(batch), "retry_in_s": delay},
                )
                await self._clock.sleep_until(self._clock.now() + delay)
                continue
            self.written += len(batch)
            self._on_written()
            return

    # ---- closing ----

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking calls, let outcomes in progress finish (bounded), close the calls still
        open as `interrupted`, then queue the writer's stop marker (the writer drains first)."""
        self._closing = True
        if self._outcomes:
            limit = grace_s if grace_s is not None else self._settings.outcome_timeout_s + 1
            if not await self._outcomes.wait(limit):
                await self._outcomes.aclose()
        for track in list(self._tracks.values()):
            reason = None if track.ended is not None else "interrupted"
            self._finish(track, rules_outcome(track.facts(reason)), reason=reason)
        await self._queue.put(_STOP)

    async def abort(self) -> None:
        """Cancel outcome extractions still running (after `close` ran out of time)."""
        self._closing = True
        await self._outcomes.aclose()
