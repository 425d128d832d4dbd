"""The campaign dialler (issue 17): the node's owned task that places running campaigns' calls.

Each pass, for every running campaign of every tenant in the store, it ends the expired leases
of dead nodes (`rows.recover_states`: failed, retried per the campaign's policy), builds the
`DialerView` (the contacts, those on a call on any node, the recent dials, the tenant's
do-not-call numbers, and the room on this node: admission and the tenant's quota), asks
`pacing.plan`, ends do-not-call contacts (`leases.bar`), completes the campaign when the plan
says so, and claims the contacts to dial (`rows.claim`: leased under this node's name with
`FOR UPDATE SKIP LOCKED`, so two nodes never dial one contact). Each claimed contact is dialled
through the campaign's `via` dialer with its variables for the agent's texts
(`Node.call_variables`); when the call is over its disposition (`DialledCall`) is recorded with
`rows.finish`, linked to the call's record, with a `contact.attempted` event in the same
transaction. A dial refused for capacity (`OverCapacity`, `QuotaExceeded`, the dial plan's
rate) gives its lease back without an attempt (`leases.unclaim`) and paces the tenant for the
refusal's `retry_after_s`: paced, not failed.

Between passes it sleeps until the plan's `wake_at`, the next lease renewal, `idle_s` (another
node's or the API's changes), or an event: a call of its own ending, or `wake()` (the control
API rings it after a lifecycle move: `notify.ring`). Its leases last `lease_s` and are renewed
every third of that while their calls go on. On start it ends the leases its node name still
holds (the calls of the process before a restart are gone), so a restarted node resumes its
running campaigns and dials nobody twice. Time is injected: `clock` for sleeping, `wall` for
the instants the store and the windows use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from config import Settings
from control_api.campaigns import leases, notify, queries, rows
from control_api.campaigns.dnc import dnc_numbers
from control_api.campaigns.lifecycle import Action, CampaignState, TransitionRefused
from control_api.campaigns.model import read_settings
from control_api.campaigns.pacing import DialerView, plan
from control_api.quotas import QuotaLookup, Quotas
from control_api.store.tenants import quota_lookup
from core.backoff import backoff
from media.clock import Clock, MonotonicClock
from voicenode.admission import Admission
from voicenode.dialler_calls import CampaignCalls, DiallerHost

log = logging.getLogger(__name__)

DncLookup = Callable[[AsyncSession, str], Awaitable[frozenset[str]]]
Room = Callable[[str], Awaitable[int]]
"""How many more calls this node would take for a tenant now (admission and its quota)."""

LEASE_S: Final = 120.0
IDLE_S: Final = 30.0


class Dialler:
    """The dialler of one node (`node`: its name in leases and attempts)."""

    def __init__(
        self,
        host: DiallerHost,
        *,
        node: str,
        clock: Clock,
        wall: Callable[[], datetime],
        room: Room,
        dnc: DncLookup = dnc_numbers,
        lease_s: float = LEASE_S,
        idle_s: float = IDLE_S,
    ) -> None:
        self._host = host
        self.node = node
        self._clock = clock
        self._wall = wall
        self._room = room
        self._dnc = dnc
        self.lease = timedelta(seconds=lease_s)
        self._idle_s = idle_s
        self._renew_at = clock.now() + lease_s / 3
        self._bell = asyncio.Event()
        self._calls = CampaignCalls(host, node=node, wall=wall, lease=self.lease, on_over=self.wake)
        self._paced = self._calls.paced
        self._recovered = False
        self._placing = 0
        """Dials started in this pass (not yet admitted: the room read does not count them)."""
        self.passes = 0
        """Passes made."""

    @property
    def calls(self) -> int:
        """This node's campaign calls not yet recorded."""
        return len(self._calls)

    @property
    def woken(self) -> bool:
        """Whether something asked for a pass since the last one started."""
        return self._bell.is_set()

    def wake(self) -> None:
        """Look at the campaigns again now (a lifecycle move, a call over)."""
        self._bell.set()

    def start(self) -> None:
        """Follow the node's calls (`run` does; a test driving `pass_once` calls it)."""
        self._calls.start()

    async def run(self) -> None:
        """Recover this node's old leases, then pass and sleep until cancelled."""
        self.start()
        failures = 0
        while True:
            try:
                if not self._recovered:
                    await self.recover_own()
                    self._recovered = True
                wake_at = await self.pass_once()
                failures = 0
            except Exception as exc:
                failures += 1
                delay = backoff(failures, 1.0, self._idle_s)
                log.error(
                    "dialler pass failed", extra={"error": type(exc).__name__, "retry_in_s": delay}
                )
                wake_at = self._wall() + timedelta(seconds=delay)
            await self._sleep(wake_at)

    async def settle(self, timeout_s: float | None = None) -> bool:
        """Wait until this dialler's dials and recordings in progress are done (tests)."""
        return await self._calls.settle(timeout_s)

    async def aclose(self) -> None:
        await self._calls.aclose()

    # ---- a pass ----

    async def pass_once(self) -> datetime | None:
        """One look at every running campaign; the earliest instant a plan asked to wake.
        A `wake()` from here on asks for another pass (`woken`)."""
        self._bell.clear()
        if self._clock.now() >= self._renew_at:
            self._renew_at = self._clock.now() + self.lease.total_seconds() / 3
            await self._calls.renew()
        async with self._host.store.session() as session:
            running = await leases.campaigns_in(session, [CampaignState.RUNNING])
        self._placing = 0
        wakes = [await self._campaign_guarded(row) for row in running]
        self.passes += 1
        return min((w for w in wakes if w is not None), default=None)

    async def _campaign_guarded(self, row: rows.CampaignRow) -> datetime | None:
        """`_campaign`, a failure logged (the other campaigns go on; this one at the next
        pass)."""
        try:
            return await self._campaign(row)
        except Exception as exc:
            extra = {"tenant_id": row.tenant_id, "campaign_id": row.id, "error": type(exc).__name__}
            log.error("campaign pass failed", extra=extra)
            return None

    async def _campaign(self, row: rows.CampaignRow) -> datetime | None:
        tenant, campaign_id = row.tenant_id, row.id
        settings = read_settings(row.body)
        now = self._wall()
        async with self._host.store.session() as session:
            recovered = await rows.recover_states(session, tenant, campaign_id, now, settings.retry)
            await notify.emit(
                session,
                [notify.attempted(tenant, campaign_id, c, now) for c in recovered],
                self.node,
            )
            contacts, live = await rows.contact_states(session, tenant, campaign_id, now)
            recent = await rows.recent_dials(session, tenant, campaign_id, now)
            barred = await self._dnc(session, tenant)
        view = DialerView(
            now=now,
            state=CampaignState.RUNNING,
            contacts=contacts,
            live=live,
            recent_dials=recent,
            do_not_call=barred,
            capacity=await self._capacity(tenant, now),
        )
        decided = plan(settings, view)
        if decided.do_not_call:
            await self._bar(tenant, campaign_id, decided.do_not_call, now)
        if decided.complete:
            await self._complete(tenant, campaign_id, now)
        if decided.dial:
            self._placing += await self._calls.dial(row, settings, decided.dial, now)
        paced = self._paced.get(tenant)
        if paced is not None and paced > now and not decided.complete:
            return paced if decided.wake_at is None else min(paced, decided.wake_at)
        return decided.wake_at

    async def _capacity(self, tenant_id: str, now: datetime) -> int:
        paced = self._paced.get(tenant_id)
        if paced is not None and paced > now:
            return 0
        self._paced.pop(tenant_id, None)
        return max(0, await self._room(tenant_id) - self._placing)

    async def _bar(
        self, tenant: str, campaign_id: str, ids: tuple[int, ...], now: datetime
    ) -> None:
        async with self._host.store.session() as session:
            barred = await leases.bar(session, tenant, campaign_id, ids, now)
            contacts, _ = await rows.contact_states(session, tenant, campaign_id, now)
            ended = [c for c in contacts if c.id in set(barred)]
            await notify.emit(
                session, [notify.attempted(tenant, campaign_id, c, now) for c in ended], self.node
            )
        if barred:
            log.info(
                "campaign contacts on the do-not-call list",
                extra={"tenant_id": tenant, "campaign_id": campaign_id, "contacts": len(barred)},
            )

    async def _complete(self, tenant: str, campaign_id: str, now: datetime) -> None:
        try:
            async with self._host.store.session() as session:
                row = await queries.move(session, tenant, campaign_id, Action.COMPLETE)
                if row is None:
                    return
                event = notify.moved(
                    tenant, campaign_id, Action.COMPLETE, CampaignState(row.state), now
                )
                await notify.emit(session, [event], self.node)
        except TransitionRefused:  # paused or cancelled meanwhile
            return
        log.info("campaign completed", extra={"tenant_id": tenant, "campaign_id": campaign_id})

    # ---- leases and sleep ----

    async def recover_own(self) -> None:
        """End the leases this node's name holds: the calls of the process before are gone."""
        now = self._wall()
        states = [CampaignState.RUNNING, CampaignState.PAUSED]
        async with self._host.store.session() as session:
            for row in await leases.campaigns_in(session, states):
                retry = read_settings(row.body).retry
                ended = await rows.recover_states(
                    session, row.tenant_id, row.id, now, retry, node=self.node
                )
                events = [notify.attempted(row.tenant_id, row.id, c, now) for c in ended]
                await notify.emit(session, events, self.node)
                if ended:
                    log.warning(
                        "campaign calls of this node's last run recorded as failed",
                        extra={
                            "tenant_id": row.tenant_id,
                            "campaign_id": row.id,
                            "contacts": len(ended),
                        },
                    )

    async def _sleep(self, wake_at: datetime | None) -> None:
        """Until `wake_at`, the next renewal, `idle_s`, or `wake()`, whichever is first."""
        delay = self._idle_s
        if wake_at is not None:
            delay = min(delay, max(0.0, (wake_at - self._wall()).total_seconds()))
        deadline = min(self._clock.now() + delay, self._renew_at)
        if self._bell.is_set():
            return
        timer = asyncio.ensure_future(self._clock.sleep_until(deadline))
        bell = asyncio.ensure_future(self._bell.wait())
        try:
            await asyncio.wait({timer, bell}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            bell.cancel()
            await asyncio.gather(timer, bell, return_exceptions=True)


@asynccontextmanager
async def open_dialler(
    host: DiallerHost,
    *,
    node: str,
    clock: Clock,
    wall: Callable[[], datetime],
    room: Room,
    dnc: DncLookup = dnc_numbers,
    lease_s: float = LEASE_S,
    idle_s: float = IDLE_S,
) -> AsyncIterator[Dialler]:
    """Run a `Dialler` while entered (its task owned here, cancelled on exit; the calls it
    placed go on, and their leases end at the node's next start or when they expire)."""
    dialler = Dialler(
        host, node=node, clock=clock, wall=wall, room=room, dnc=dnc, lease_s=lease_s, idle_s=idle_s
    )
    task = asyncio.get_running_loop().create_task(dialler.run(), name=f"dialler:{node}")
    try:
        yield dialler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dialler.aclose()


class NodeParts(DiallerHost, Protocol):
    """What `node_dialler` reads of the node for its room: admission and the tenants' quotas."""

    @property
    def settings(self) -> Settings: ...

    @property
    def admission(self) -> Admission: ...

    @property
    def quotas(self) -> Quotas: ...

    @property
    def ready(self) -> bool: ...

    @property
    def saturated(self) -> bool: ...


def node_room(node: NodeParts, quota: QuotaLookup) -> Room:
    """The calls the node would admit now for a tenant: its free slots (none while loading,
    draining or saturated) and the tenant's (`max_concurrent_calls`, the node's tenant cap).
    A tenant's calls-per-minute quota is not counted ahead: a dial it refuses is paced."""

    async def room(tenant_id: str) -> int:
        admission = node.admission
        if not node.ready or admission.draining or node.saturated:
            return 0
        free = admission.max_calls - admission.active
        limits = (await quota(tenant_id)).max_concurrent_calls, node.quotas.tenant_cap
        tenant = min((n for n in limits if n is not None), default=None)
        if tenant is not None:
            free = min(free, tenant - node.quotas.active(tenant_id))
        return max(0, free)

    return room


def utc_now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def node_dialler(node: NodeParts) -> AsyncIterator[Dialler]:
    """The node's dialler on the real clocks, under `node.name`, while entered."""
    async with open_dialler(
        node,
        node=node.settings.node.name,
        clock=MonotonicClock(),
        wall=utc_now,
        room=node_room(node, quota_lookup(node.store)),
    ) as dialler:
        yield dialler
