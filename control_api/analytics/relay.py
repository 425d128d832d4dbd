"""The relay: pushes this node's outbox rows to each sink (the Redis Stream, ClickHouse, every
webhook), at least once, each call's events in `seq` order.

Per sink and call, `relay_marks` holds the last `seq` delivered; a pass takes the rows above
the marks (oldest first, `relay_batch_size` at most), sends them and moves the marks, so a
restarted node resumes where it stopped. A failure holds back that call's later events for that
sink only:

- batch sinks (Redis, ClickHouse; `batches`): unreachable → the whole batch is retried after
  the sink's backoff, doubling; never dropped. Rows a sink refuses go to `dead_letters`.
- webhooks (one request per event): a failed event is retried after `webhook_backoff_s`,
  doubling up to `webhook_backoff_max_s`; after `webhook_max_attempts` tries it goes to
  `dead_letters` and the call's next events go on. Other calls are not held back. A dead
  letter an admin queued for replay gets one more try on the next pass, out of its call's
  order (receivers dedupe by event id anyway): delivered, it leaves `dead_letters`; refused,
  it stays there with the new error. Each node replays the events of its own outbox.

Backoff runs on the injected clock; `pass_once()` is one pass (tests drive it directly). Each
pass reads the webhook URL allowlist and the client that enforces it anew (`urls`: the node's,
which a reload replaces).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Sequence

import httpx
from sqlalchemy import and_, func, select

from config.schema import AnalyticsSettings
from control_api.analytics.batches import BatchSink, Lane, dead_letters
from control_api.analytics.sinks import DeliveryError, TenantUrls, WebhookSink
from control_api.analytics.tables import DeadLetterRow, OutboxRow, RelayMarkRow, WebhookRow
from control_api.store import Store
from control_api.store.crypto import SealError
from control_api.store.secrets import SecretsUnavailable, open_webhook_secret
from core.backoff import backoff
from media.clock import Clock

log = logging.getLogger(__name__)

WEBHOOK_CONCURRENCY = 8
"""Calls whose events go to one webhook at the same time (each call's stay in order)."""


class Relay:
    def __init__(
        self,
        settings: AnalyticsSettings,
        *,
        store: Store,
        node: str,
        clock: Clock,
        wall: Callable[[], datetime.datetime],
        http: httpx.AsyncClient,
        stream: BatchSink | None = None,
        urls: TenantUrls | None = None,
        lanes: Sequence[Lane] = (),
    ) -> None:
        self._settings = settings
        self._store = store
        self._node = node
        self._clock = clock
        self._wall = wall
        self._urls = urls or (lambda: (settings.url_allowlist, http))
        self._lanes = list(lanes)
        if stream is not None:
            backoffs = (settings.redis_backoff_s, settings.redis_backoff_max_s)
            self._lanes.insert(0, Lane(stream, settings.relay_batch_size, *backoffs))
        self._retry_at: dict[tuple[str, str], float] = {}
        self._floor: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self.passes = 0

    @property
    def stream_failing(self) -> bool:
        """A batch sink's last try failed (retrying with backoff)."""
        return any(lane.failures for lane in self._lanes)

    def floor(self, sink: str) -> int:
        """Every outbox row up to this id is done for `sink`."""
        return self._floor.get(sink, 0)

    def wake(self) -> None:
        """New rows were written: look at once."""
        self._wake.set()

    def stop(self) -> None:
        """Make `run` return after the pass in progress (marks saved: nothing sent twice)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Relay until `stop()` (or cancelled)."""
        while not self._stopping:
            self._wake.clear()
            try:
                due = await self.pass_once()
            except Exception:
                log.exception("relay pass failed", extra={"node": self._node})
                due = None
            if self._stopping:
                return
            deadline = self._clock.now() + self._settings.relay_interval_s
            if due is not None:
                deadline = min(deadline, due)
            await self._idle(deadline)

    async def _idle(self, deadline: float) -> None:
        if self._wake.is_set():
            return
        sleeper = asyncio.ensure_future(self._clock.sleep_until(deadline))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeper, waker):
                waiter.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def pass_once(self) -> float | None:
        """Deliver what is pending to every sink; returns the earliest retry time, if any."""
        self.passes += 1
        async with self._store.session() as session:
            hooks = (await session.scalars(select(WebhookRow).order_by(WebhookRow.id))).all()
        urls, http = self._urls()
        allowlist = None if self._settings.allow_private_urls else urls
        sinks = []
        for h in hooks:
            try:
                secret = open_webhook_secret(self._store.box, h.id, h.secret)
            except (SealError, SecretsUnavailable) as exc:
                log.error(
                    "webhook secret cannot be opened; not delivering",
                    extra={"tenant_id": h.tenant_id, "webhook": h.id, "error": str(exc)},
                )
                continue
            sinks.append(
                WebhookSink(
                    webhook_id=h.id,
                    tenant_id=h.tenant_id,
                    url=h.url,
                    secret=secret,
                    events=h.events,
                    after_outbox_id=h.after_outbox_id,
                    http=http,
                    wall=lambda: self._wall().timestamp(),
                    timeout_s=self._settings.webhook_timeout_s,
                    allowlist=allowlist,
                )
            )
        live = {s.key for s in sinks}
        self._retry_at = {k: v for k, v in self._retry_at.items() if k[0] in live}
        async with asyncio.TaskGroup() as group:
            for lane in self._lanes:
                group.create_task(self._relay_batch(lane))
            for sink in sinks:
                group.create_task(self._relay_webhook(sink))
        due = list(self._retry_at.values())
        due += [at for lane in self._lanes if (at := lane.due()) is not None]
        return min(due) if due else None

    # ---- pending rows and marks ----

    async def _pending(
        self,
        sink: str,
        *,
        tenant_id: str | None = None,
        after: int = 0,
        blocked: Sequence[str] = (),
        limit: int | None = None,
    ) -> tuple[list[OutboxRow], int]:
        """Rows above `sink`'s marks (oldest first) and the newest outbox id looked at."""
        async with self._store.session() as session:
            top = await session.scalar(
                select(func.max(OutboxRow.id)).where(OutboxRow.node == self._node)
            )
            if top is None:
                return [], 0
            stmt = (
                select(OutboxRow)
                .outerjoin(
                    RelayMarkRow,
                    and_(RelayMarkRow.sink == sink, RelayMarkRow.call_id == OutboxRow.call_id),
                )
                .where(
                    OutboxRow.node == self._node,
                    OutboxRow.id > max(after, self._floor.get(sink, 0)),
                    OutboxRow.id <= top,
                    OutboxRow.seq > func.coalesce(RelayMarkRow.delivered_seq, -1),
                )
                .order_by(OutboxRow.id)
                .limit(limit or self._settings.relay_batch_size)
            )
            if tenant_id is not None:
                stmt = stmt.where(OutboxRow.tenant_id == tenant_id)
            if blocked:
                stmt = stmt.where(OutboxRow.call_id.not_in(list(blocked)))
            rows = list((await session.scalars(stmt)).all())
        return rows, top

    def _advance_floor(
        self, sink: str, rows: Sequence[OutboxRow], top: int, clean: bool, limit: int = 0
    ) -> None:
        """Everything up to `top` is done for `sink` when the pass saw all of it and nothing
        is held back: later passes start above it."""
        if clean and len(rows) < (limit or self._settings.relay_batch_size):
            self._floor[sink] = max(self._floor.get(sink, 0), top)

    async def _save_marks(
        self, sink: str, marks: dict[str, tuple[int, int]], dead: Sequence[DeadLetterRow] = ()
    ) -> None:
        async with self._store.session() as session:
            for call_id, (seq, attempts) in marks.items():
                row = await session.get(RelayMarkRow, (sink, call_id))
                if row is None:
                    session.add(
                        RelayMarkRow(
                            sink=sink, call_id=call_id, delivered_seq=seq, attempts=attempts
                        )
                    )
                else:
                    row.delivered_seq = max(row.delivered_seq, seq)
                    row.attempts = attempts
            session.add_all(dead)

    # ---- batch sinks (Redis, ClickHouse) ----

    async def _relay_batch(self, lane: Lane) -> None:
        now = self._clock.now()
        if lane.failures and now < lane.retry_at:
            return
        rows, top = await self._pending(lane.key, limit=lane.batch_size)
        if rows:
            if lane.hold(rows, now, self._stopping):
                return
            try:
                refused = await lane.sink.send_batch(rows) or ()
            except DeliveryError as exc:
                lane.failures += 1
                delay = backoff(lane.failures, lane.backoff_s, lane.backoff_max_s)
                lane.retry_at = now + delay
                log.warning(
                    "batch sink unreachable; retrying",
                    extra={
                        "sink": lane.key,
                        "error": exc.detail,
                        "failures": lane.failures,
                        "retry_in_s": delay,
                        "pending": len(rows),
                    },
                )
                return
            marks: dict[str, tuple[int, int]] = {}
            for row in rows:
                marks[row.call_id] = (max(row.seq, marks.get(row.call_id, (-1, 0))[0]), 0)
            for refusal in refused:
                log.error(
                    "event refused by a sink; dead-lettered",
                    extra={"sink": lane.key, "event_id": refusal.row.event_id},
                )
            await self._save_marks(lane.key, marks, dead_letters(lane.key, refused, self._wall()))
            if len(rows) == lane.batch_size:
                self.wake()
            if lane.failures:
                log.info("batch sink reachable again", extra={"sink": lane.key})
            lane.failures = 0
        self._advance_floor(lane.key, rows, top, clean=True, limit=lane.batch_size)

    # ---- webhooks ----

    async def _replay(self, sink: WebhookSink) -> None:
        async with self._store.session() as session:
            queued = (
                await session.execute(
                    select(DeadLetterRow.id, OutboxRow)
                    .join(OutboxRow, OutboxRow.event_id == DeadLetterRow.event_id)
                    .where(
                        DeadLetterRow.sink == sink.key,
                        DeadLetterRow.replay.is_(True),
                        OutboxRow.node == self._node,
                    )
                    .order_by(DeadLetterRow.id)
                    .limit(self._settings.relay_batch_size)
                )
            ).all()
        for dead_id, row in queued:
            extra = {"tenant_id": sink.tenant_id, "webhook": sink.webhook_id}
            try:
                await sink.send(row)
                error = None
            except DeliveryError as exc:
                error = exc.detail
            async with self._store.session() as session:
                dead = await session.get(DeadLetterRow, dead_id)
                if dead is None:
                    continue  # the webhook was removed meanwhile
                if error is None:
                    await session.delete(dead)
                    log.info("dead letter replayed", extra={**extra, "event_id": row.event_id})
                else:
                    dead.replay, dead.error = False, error
                    dead.attempts += 1
                    log.warning(
                        "dead letter replay failed",
                        extra={**extra, "event_id": row.event_id, "error": error},
                    )
        if len(queued) == self._settings.relay_batch_size:
            self.wake()

    async def _relay_webhook(self, sink: WebhookSink) -> None:
        await self._replay(sink)
        now = self._clock.now()
        blocked = [
            call for (key, call), at in self._retry_at.items() if key == sink.key and at > now
        ]
        rows, top = await self._pending(
            sink.key, tenant_id=sink.tenant_id, after=sink.after_outbox_id, blocked=blocked
        )
        calls: dict[str, list[OutboxRow]] = {}
        for row in rows:
            calls.setdefault(row.call_id, []).append(row)
        limit = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        async with asyncio.TaskGroup() as group:
            for call_id, call_rows in calls.items():
                group.create_task(self._deliver_call(sink, call_id, call_rows, limit))
        if len(rows) == self._settings.relay_batch_size:
            self.wake()
        clean = not any(key == sink.key for key, _call in self._retry_at)
        self._advance_floor(sink.key, rows, top, clean=clean)

    async def _deliver_call(
        self, sink: WebhookSink, call_id: str, rows: Sequence[OutboxRow], limit: asyncio.Semaphore
    ) -> None:
        settings = self._settings
        async with self._store.session() as session:
            mark = await session.get(RelayMarkRow, (sink.key, call_id))
            delivered = mark.delivered_seq if mark is not None else -1
            attempts = mark.attempts if mark is not None else 0
        dead: list[DeadLetterRow] = []
        extra = {"call_id": call_id, "tenant_id": sink.tenant_id, "webhook": sink.webhook_id}
        self._retry_at.pop((sink.key, call_id), None)
        async with limit:
            for row in rows:
                if row.seq <= delivered:
                    continue
                if sink.wants(row.type):
                    try:
                        await sink.send(row)
                    except DeliveryError as exc:
                        attempts += 1
                        if attempts < settings.webhook_max_attempts:
                            delay = backoff(
                                attempts, settings.webhook_backoff_s, settings.webhook_backoff_max_s
                            )
                            self._retry_at[(sink.key, call_id)] = self._clock.now() + delay
                            log.warning(
                                "webhook delivery failed; retrying",
                                extra={
                                    **extra,
                                    "event_id": row.event_id,
                                    "error": exc.detail,
                                    "attempts": attempts,
                                    "retry_in_s": delay,
                                },
                            )
                            break
                        dead.append(
                            DeadLetterRow(
                                sink=sink.key,
                                event_id=row.event_id,
                                call_id=row.call_id,
                                tenant_id=row.tenant_id,
                                seq=row.seq,
                                type=row.type,
                                attempts=attempts,
                                error=exc.detail,
                                created_at=self._wall(),
                            )
                        )
                        log.error(
                            "webhook delivery given up; event dead-lettered",
                            extra={**extra, "event_id": row.event_id, "attempts": attempts},
                        )
                delivered, attempts = row.seq, 0
        await self._save_marks(sink.key, {call_id: (delivered, attempts)}, dead)
