"""The dialler's calls (`voicenode.dialler`): the claimed contacts dialled, each followed
to its end (`DialledCall`: the dial's result, the call's events, its release, the SIP dialer's
unanswered outcome) and its attempt recorded once with its `contact.attempted` event; a dial
refused for capacity paced (its lease given back, the tenant paced for the refusal's
`retry_after_s`); the leases of the calls still going renewed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Final, Protocol

from agents.variables import OnMachine
from control_api.calls import LiveCalls
from control_api.campaigns import leases, notify, rows
from control_api.campaigns.dialled import DialledCall
from control_api.campaigns.model import CampaignSettings
from control_api.host import AgentRef, Dialer, DialError, ReportsUnanswered
from control_api.number_ranges import may_present
from control_api.refusals import CallRefused
from control_api.store import Store
from core.tasks import OwnedTasks
from media.call import CallInfo
from media.dialplan import DestinationInvalid, DestinationRefused, RateLimited
from pipeline.events import CallEvent

log = logging.getLogger(__name__)

CLOSE_GRACE_S: Final = 5.0


class DiallerHost(Protocol):
    """What the dialler needs of the node (`voicenode.node.Node`)."""

    @property
    def store(self) -> Store: ...

    @property
    def calls(self) -> LiveCalls: ...

    @property
    def dialers(self) -> dict[str, Dialer]: ...

    @property
    def call_variables(self) -> dict[str, Mapping[str, str]]:
        """The template variables of the calls being placed, by call id (the agent's texts)."""
        ...

    @property
    def call_on_machine(self) -> dict[str, OnMachine]:
        """The campaign's voicemail choice for the calls being placed, by call id."""
        ...

    async def find_agent(
        self, tenant_id: str, name: str, version: int | None = None
    ) -> AgentRef | None: ...

    def on_release(self, hook: Callable[[str], None]) -> Callable[[], None]:
        """`hook(call_id)` whenever a call's admission is given back (the call is over)."""
        ...


class CampaignCalls:
    """One node's campaign calls, from the claim to the recorded attempt."""

    def __init__(
        self,
        host: DiallerHost,
        *,
        node: str,
        wall: Callable[[], datetime],
        lease: timedelta,
        on_over: Callable[[], None],
    ) -> None:
        self._host = host
        self.node = node
        self._wall = wall
        self.lease = lease
        self._on_over = on_over
        self._calls: dict[str, DialledCall] = {}
        self.paced: dict[str, datetime] = {}
        """Tenants whose dials were refused for capacity, until when."""
        self._tasks = OwnedTasks(log=log, failed="dialler task failed")
        self._unsubscribe: list[Callable[[], None]] = []
        self._watched: set[int] = set()

    def __len__(self) -> int:
        return len(self._calls)

    def start(self) -> None:
        """Follow the node's calls (their events and releases)."""
        self._unsubscribe += [
            self._host.calls.subscribe(self.on_event),
            self._host.on_release(self.on_release),
        ]

    async def settle(self, timeout_s: float | None = None) -> bool:
        """Wait until the dials and recordings in progress are done (the calls themselves may
        go on); False if some were still running after `timeout_s`."""
        return await self._tasks.wait(timeout_s)

    async def aclose(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """The dials and recordings in progress get `grace_s` to finish (a drained node's
        last calls are recorded), then it stops following the node's calls and cancels what is
        left (those leases end at the node's next start)."""
        await self._tasks.wait(grace_s)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self._tasks.aclose()

    async def dial(
        self, row: rows.CampaignRow, settings: CampaignSettings, ids: tuple[int, ...], now: datetime
    ) -> int:
        """Claim and dial the contacts `ids` of the campaign; returns how many were claimed."""
        tenant = row.tenant_id
        extra = {"tenant_id": tenant, "campaign_id": row.id}
        agent = await self._host.find_agent(tenant, settings.agent)
        dialer = self._host.dialers.get(settings.via)
        if agent is None or dialer is None:
            missing = "agent" if agent is None else "dialer"
            log.warning(
                "campaign cannot dial", extra={**extra, "missing": missing, "via": settings.via}
            )
            return 0
        self._watch(dialer)
        async with self._host.store.session() as session:
            if settings.from_ is not None and not await may_present(
                session, tenant, settings.from_
            ):  # the number left the tenant since the campaign was made: dial nobody
                log.warning("campaign caller id is not the tenant's", extra=extra)
                return 0
            claimed = await rows.claim(
                session, tenant, row.id, ids, node=self.node, now=now, lease=self.lease
            )
            contacts = await leases.contacts_by_id(session, tenant, claimed)
        for contact_id in claimed:
            contact = contacts[contact_id]
            call = DialledCall(
                call_id=uuid.uuid4().hex,
                tenant_id=tenant,
                campaign_id=row.id,
                contact_id=contact_id,
                retry=settings.retry,
            )
            self._calls[call.call_id] = call
            self._host.call_variables[call.call_id] = dict(contact.variables)
            self._host.call_on_machine[call.call_id] = settings.voicemail
            dial = self._dial(call, dialer, agent.pinned, contact.number, settings.from_)
            self._tasks.spawn(dial, f"campaign-dial:{call.call_id}")
        return len(claimed)

    def _watch(self, dialer: Dialer) -> None:
        if isinstance(dialer, ReportsUnanswered) and id(dialer) not in self._watched:
            self._watched.add(id(dialer))
            self._unsubscribe.append(dialer.on_unanswered(self._on_unanswered))

    async def _dial(
        self, call: DialledCall, dialer: Dialer, agent: str, number: str, caller_id: str | None
    ) -> None:
        extra = {
            "call_id": call.call_id,
            "tenant_id": call.tenant_id,
            "campaign_id": call.campaign_id,
        }
        guard = self._host.calls.dialplan
        try:
            guard.check(call.tenant_id, number)
            guard.take_call(call.tenant_id)
            await dialer.dial(
                call_id=call.call_id,
                tenant_id=call.tenant_id,
                agent=agent,
                to=number,
                caller_id=caller_id,
            )
        except (CallRefused, RateLimited) as exc:
            log.info("campaign dial paced", extra={**extra, "reason": type(exc).__name__})
            await self._pace(call, exc.retry_after_s or 1)
            return
        except (DestinationInvalid, DestinationRefused) as exc:
            kind = type(exc).__name__
            log.warning("campaign number outside the dial plan", extra={**extra, "error": kind})
            call.refusal = "refused"
        except DialError as exc:
            call.refusal = exc.outcome or "unreachable"
            log.info("campaign call not placed", extra={**extra, "outcome": call.refusal})
        except Exception as exc:  # its text may carry the number: the type only
            log.error("campaign dial failed", extra={**extra, "error": type(exc).__name__})
            call.refusal = "failed"
        else:
            call.dialled = True
            log.info("campaign call placed", extra=extra)
            if not call.over:
                return  # `_on_release` records it when it ends
        await self._finish(call)

    async def _pace(self, call: DialledCall, retry_after_s: float) -> None:
        until = self._wall() + timedelta(seconds=retry_after_s)
        self.paced[call.tenant_id] = max(until, self.paced.get(call.tenant_id, until))
        self._forget(call)
        async with self._host.store.session() as session:
            await leases.unclaim(session, call.tenant_id, call.contact_id, node=self.node)

    async def _finish(self, call: DialledCall) -> None:
        """Record the attempt's disposition (once), with its `contact.attempted` event."""
        if call.finishing:
            return
        call.finishing = True
        disposition = call.disposition()
        at = self._wall()
        try:
            async with self._host.store.session() as session:
                after = await rows.finish(
                    session, call.tenant_id, call.contact_id, node=self.node,
                    outcome=disposition, at=at, retry=call.retry, call_id=call.record,
                )  # fmt: skip
                if after is not None:
                    event = notify.attempted(
                        call.tenant_id, call.campaign_id, after, at, call.record
                    )
                    await notify.emit(session, [event], self.node)
        finally:
            self._forget(call)
            self._on_over()
        extra = {
            "call_id": call.call_id,
            "tenant_id": call.tenant_id,
            "campaign_id": call.campaign_id,
        }
        if after is None:
            log.warning("campaign attempt's lease was lost; not recorded", extra=extra)
        else:
            log.info("campaign attempt recorded", extra={**extra, "disposition": disposition.value})

    def _forget(self, call: DialledCall) -> None:
        self._calls.pop(call.call_id, None)
        self._host.call_variables.pop(call.call_id, None)
        self._host.call_on_machine.pop(call.call_id, None)

    # ---- what the node reports ----

    def on_event(self, info: CallInfo, event: CallEvent) -> None:
        call = self._calls.get(info.call_id)
        if call is not None:
            call.note(event)

    def _on_unanswered(self, call_id: str, outcome: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.refusal = outcome

    def on_release(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        call.released = True
        if call.over and not call.finishing:
            self._tasks.spawn(self._finish(call), f"campaign-finish:{call_id}")

    async def renew(self) -> None:
        """Extend the leases of the calls still going by `lease` from now."""
        by_tenant: dict[str, list[int]] = {}
        for call in self._calls.values():
            by_tenant.setdefault(call.tenant_id, []).append(call.contact_id)
        until = self._wall() + self.lease
        async with self._host.store.session() as session:
            for tenant, ids in by_tenant.items():
                await leases.renew(session, tenant, ids, node=self.node, until=until)
