"""Per-tenant retention of call recordings: what is older than its tenant keeps goes.

`expired` is the decision, sans-IO: the stored recordings, each tenant's retention in days (a
tenant not in the mapping keeps its recordings), and the time now; it returns the keys to
delete. `RecordingRetention` applies it to a `RecordingStore`: `pass_once` lists, decides and
deletes; `run` is a pass now and every `every_s` on the injected clock, until cancelled (a store
that fails is tried again at the next pass). The wall clock (`wall`) says what "now" is.

On a node, `open_recording_retention` runs it while entered: each tenant in the store keeps its
recordings as long as its own retention says (`PUT /v1/tenants/{id}/recording-retention`, the
`tenant_retention` table), else `recording.retention_days` (`tenant_days`; 0: kept). A pass
with no tenant to clean lists nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Final

from sqlalchemy import select

from control_api.recordings.store import RecordingKey, RecordingStore, StoredRecording
from control_api.store import Store
from control_api.store.models import Tenant
from control_api.store.tenants import TenantRetention
from core.errors import StoreError
from media.clock import Clock

__all__ = [
    "RETENTION_EVERY_S",
    "RecordingRetention",
    "expired",
    "open_recording_retention",
    "tenant_days",
]

log = logging.getLogger(__name__)

RETENTION_EVERY_S: Final = 3600.0


def expired(
    recordings: Iterable[StoredRecording],
    days: Mapping[str, int],
    now: datetime.datetime,
) -> list[RecordingKey]:
    """The recordings stored more than their tenant's `days` before `now`."""
    gone = []
    for rec in recordings:
        keep = days.get(rec.key.tenant_id)
        if keep is not None and rec.stored_at < now - datetime.timedelta(days=keep):
            gone.append(rec.key)
    return gone


class RecordingRetention:
    """Deletes each tenant's recordings past its retention."""

    def __init__(
        self,
        store: RecordingStore,
        days: Callable[[], Awaitable[Mapping[str, int]]],
        wall: Callable[[], datetime.datetime],
    ) -> None:
        self._store = store
        self._days = days
        self._wall = wall

    async def pass_once(self) -> list[RecordingKey]:
        days = await self._days()
        if not days:
            return []
        deleted = []
        for key in expired(await self._store.list(), days, self._wall()):
            if await self._store.delete(key):
                log.info(
                    "recording past retention deleted",
                    extra={"tenant_id": key.tenant_id, "call_id": key.call_id},
                )
                deleted.append(key)
        return deleted

    async def run(self, clock: Clock, every_s: float = RETENTION_EVERY_S) -> None:
        """A pass now and every `every_s` until cancelled."""
        while True:
            try:
                await self.pass_once()
            except StoreError as exc:
                log.warning(
                    "recording retention pass failed; next pass retries",
                    extra={"error": type(exc).__name__},
                )
            except Exception:  # the store's database, say: the next pass tries again
                log.exception("recording retention pass failed; next pass retries")
            await clock.sleep_until(clock.now() + every_s)


def tenant_days(store: Store, days: int) -> Callable[[], Awaitable[Mapping[str, int]]]:
    """Each tenant in `store` keeps its recordings as long as its own retention says, else
    `days` days; a tenant whose retention is 0 (kept) is left out."""

    async def read() -> Mapping[str, int]:
        async with store.session() as session:
            rows = await session.execute(
                select(Tenant.id, TenantRetention.recording_days).outerjoin(
                    TenantRetention, TenantRetention.tenant_id == Tenant.id
                )
            )
            found = {str(tenant): days if own is None else int(own) for tenant, own in rows.all()}
        return {tenant: keep for tenant, keep in found.items() if keep > 0}

    return read


@contextlib.asynccontextmanager
async def open_recording_retention(
    store: Store, recordings: RecordingStore, days: int, clock: Clock
) -> AsyncIterator[RecordingRetention]:
    """The retention job running while entered: `days` for every tenant without its own."""
    retention = RecordingRetention(
        recordings, tenant_days(store, days), lambda: datetime.datetime.now(datetime.UTC)
    )
    task = asyncio.create_task(retention.run(clock), name="recording-retention")
    try:
        yield retention
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
