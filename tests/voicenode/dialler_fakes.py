"""A node for the campaign dialler's tests (`voicenode.dialler`): a real store and a real
`LiveCalls`, and a fake `Dialer` whose far ends answer as each number's script says, on a
virtual clock.

`FakeDialer` behaves like `voicenode.sip_listener.SipDialer` does towards the dialler: a
refusal before ringing raises `DialError` with its outcome after the admission was given back
(`release`), a call that rings unanswered returns from `dial` and later reports
`on_unanswered` then its release, and an answered call runs in `LiveCalls` (its events:
`AmdDetected`, `CallEnded`) and is released when it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from agents.catalog import embedded_specs
from agents.variables import OnMachine
from config.schema import DialPlanSettings
from control_api.calls import LiveCalls
from control_api.campaigns import queries, rows
from control_api.campaigns.lifecycle import Action
from control_api.campaigns.model import CampaignIn, Contact, Retry, Schedule, Window
from control_api.host import AgentRef, Dialer, DialError, UnansweredHook
from control_api.refusals import QuotaExceeded
from control_api.store import Store
from control_api.store import tenants as tenant_rows
from media.call import Call, CallInfo, Direction
from media.clock import VirtualClock
from media.transport import Transport
from pipeline.amd import AmdEvidence
from pipeline.events import AmdDetected, CallEnded, EventCallback
from tests.support.served_node import VirtualLiveCall
from voicenode.dialler import Dialler, Room

EPOCH = datetime(2027, 6, 7, 13, 0, tzinfo=UTC)
"""Monday 13:00 UTC: virtual time 0."""
TENANT = "t"
SPEC = embedded_specs()["receptionist"]

Kind = Literal["human", "machine", "voicemail", "busy", "late_busy", "no_answer", "unreachable"]


@dataclass(frozen=True)
class Answer:
    """How a number's far end answers every call."""

    kind: Kind
    talk_s: float = 20.0
    """An answered call's length; a ringing one's time to give up."""
    over_quota: int = 0
    """Refuse this many dials first with QuotaExceeded (the tenant's quota: paced)."""


@dataclass
class Dial:
    call_id: str
    number: str
    at: float
    variables: Mapping[str, str] | None
    on_machine: str | None = None
    caller_id: str | None = None


@dataclass
class FakeHost:
    """`voicenode.dialler_calls.DiallerHost` over a real store and `LiveCalls`."""

    store: Store
    clock: VirtualClock
    answers: dict[str, Answer] = field(default_factory=dict)
    call_variables: dict[str, Mapping[str, str]] = field(default_factory=dict)
    call_on_machine: dict[str, OnMachine] = field(default_factory=dict)
    dials: list[Dial] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Numbers whose dial was refused for the quota."""
    peak_live: int = 0

    def __post_init__(self) -> None:
        self.calls = LiveCalls(self)
        self.calls.use_dialplan(
            DialPlanSettings(allowed_prefixes=("+1",), calls_per_minute=10_000), self.clock.now
        )
        self.dialer = FakeDialer(self)
        self.dialers: dict[str, Dialer] = {"sip": self.dialer}
        self._hooks: list[Callable[[str], None]] = []
        self.live: set[str] = set()
        self.ends: dict[str, float] = {}
        """When each call placed ends (virtual time)."""

    async def find_agent(
        self, tenant_id: str, name: str, version: int | None = None
    ) -> AgentRef | None:
        return AgentRef(tenant_id=tenant_id, name=name, version=1, spec=SPEC)

    def on_release(self, hook: Callable[[str], None]) -> Callable[[], None]:
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook)

    def release(self, call_id: str) -> None:
        self.live.discard(call_id)
        for hook in list(self._hooks):
            hook(call_id)

    async def run_call(
        self, info: CallInfo, agent: str, transport: Transport, call: Call, on_event: EventCallback
    ) -> None:
        answer = self.answers[info.to_uri]
        if answer.kind in ("machine", "voicemail"):
            evidence = AmdEvidence(
                first_speech_ms=300, speech_ms=2200, greeting_ms=2200, utterances=1, silence_ms=0
            )
            amd = AmdDetected(result="machine", reason="beep", decided_ms=2500, evidence=evidence)
            on_event(amd)
        await self.clock.sleep_until(self.clock.now() + answer.talk_s)
        ended = {"machine": "machine", "voicemail": "voicemail"}.get(answer.kind, "hangup")
        on_event(CallEnded(reason=ended, duration_s=answer.talk_s))

    def calls_ending(self) -> bool:
        """Whether a call whose time is up has not been released yet."""
        return any(self.ends.get(c, 0.0) <= self.clock.now() for c in self.live)

    def dialled(self, number: str) -> list[Dial]:
        return [d for d in self.dials if d.number == number]


class FakeDialer:
    """`Dialer` + `ReportsUnanswered`: each number answers as `host.answers` says."""

    def __init__(self, host: FakeHost) -> None:
        self._host = host
        self._hooks: list[UnansweredHook] = []
        self._ringing: set[asyncio.Task[None]] = set()

    def on_unanswered(self, hook: UnansweredHook) -> Callable[[], None]:
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook)

    async def dial(
        self, *, call_id: str, tenant_id: str, agent: str, to: str, caller_id: str | None = None
    ) -> None:
        host = self._host
        answer = host.answers[to]
        if host.refused.count(to) < answer.over_quota:
            host.refused.append(to)
            raise QuotaExceeded("max_concurrent_calls", 5)
        setup = host.call_variables.get(call_id), host.call_on_machine.get(call_id)
        host.dials.append(Dial(call_id, to, host.clock.now(), *setup, caller_id))
        host.live.add(call_id)
        host.ends[call_id] = host.clock.now() + answer.talk_s
        host.peak_live = max(host.peak_live, len(host.live))
        refusal = {"busy": "busy", "unreachable": "unreachable"}.get(answer.kind)
        if refusal is not None:
            host.release(call_id)  # the admission goes back before the error is raised
            raise DialError("the call did not connect", 502, refusal)
        if answer.kind in ("late_busy", "no_answer"):
            ring = self._ring(call_id, answer)
            task = asyncio.get_running_loop().create_task(ring)
            self._ringing.add(task)
            task.add_done_callback(self._ringing.discard)
            return
        info = CallInfo(
            call_id=call_id,
            tenant_id=tenant_id,
            direction=Direction.OUTBOUND,
            to_uri=to,
            transport="sip",
        )
        host.calls.start(VirtualLiveCall(info), agent)

    async def _ring(self, call_id: str, answer: Answer) -> None:
        await self._host.clock.sleep_until(self._host.clock.now() + answer.talk_s)
        outcome = "busy" if answer.kind == "late_busy" else "no_answer"
        for hook in list(self._hooks):
            hook(call_id, outcome)
        self._host.release(call_id)

    async def aclose(self) -> None:
        for task in self._ringing:
            task.cancel()
        await asyncio.gather(*self._ringing, return_exceptions=True)


def campaign(
    numbers: list[str],
    *,
    retry: Retry | None = None,
    windows: tuple[Window, ...] = (Window(days=("mon", "tue"), start="09:00", end="17:00"),),
    max_concurrent: int = 10,
    calls_per_minute: int = 60,
    variables: dict[str, str] | None = None,
    voicemail: Literal["hang_up", "leave_message"] = "hang_up",
    from_: str | None = None,
) -> CampaignIn:
    return CampaignIn(
        name="reminders",
        agent="receptionist",
        via="sip",
        contacts=tuple(Contact(number=n, variables=dict(variables or {})) for n in numbers),
        schedule=Schedule(timezone="UTC", windows=windows),
        max_concurrent=max_concurrent,
        calls_per_minute=calls_per_minute,
        retry=retry or Retry(max_attempts=1, on=()),
        voicemail=voicemail,
        from_=from_,
    )


async def add_tenant(store: Store) -> None:
    async with store.session() as session:
        await tenant_rows.create_tenant(session, "T", tenant_id=TENANT)


async def started(store: Store, body: CampaignIn, at: datetime = EPOCH) -> str:
    """A running campaign of `body` for the tenant; its id."""
    async with store.session() as session:
        campaign_id = await rows.create_campaign(session, TENANT, body, at)
        await queries.move(session, TENANT, campaign_id, Action.START)
    return campaign_id


def wall_of(clock: VirtualClock) -> Callable[[], datetime]:
    return lambda: EPOCH + timedelta(seconds=clock.now())


async def unlimited(_: str) -> int:
    return 1000


def dialler_for(
    host: FakeHost,
    node: str = "node-a",
    *,
    room: Room | None = None,
    barred: frozenset[str] = frozenset(),
    lease_s: float = 120.0,
) -> Dialler:
    async def dnc(_session: AsyncSession, _tenant: str) -> frozenset[str]:
        return barred

    return Dialler(
        host,
        node=node,
        clock=host.clock,
        wall=wall_of(host.clock),
        room=room or unlimited,
        dnc=dnc,
        lease_s=lease_s,
    )


async def run_until_idle(dialler: Dialler, host: FakeHost, *, until_s: float) -> None:
    """Drive the dialler as its loop would, on the virtual clock, until `until_s`: a pass,
    its dials settled, then time moved to the plan's wake or the next call's end, whichever
    is first, and the calls ended by then recorded."""
    while host.clock.now() < until_s:
        wake_at = await dialler.pass_once()
        assert await dialler.settle(30)
        if dialler.woken:  # a call was recorded meanwhile: the loop passes again at once
            continue
        now = host.clock.now()
        targets = [until_s, *(host.ends[c] for c in host.live if c in host.ends)]
        if wake_at is not None:
            targets.append(now + (wake_at - wall_of(host.clock)()).total_seconds())
        await host.clock.advance(max(0.5, min(targets) - now))
        await wait_for(lambda: not host.calls_ending(), host)
        assert await dialler.settle(30)


async def wait_for(condition: Callable[[], bool], host: FakeHost, limit_s: float = 30) -> None:
    """Wait (bounded) until `condition()` holds: the store's threads and the calls' tasks
    run on their own schedule, which the virtual clock does not drive."""
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - the store's threads set no event
            await asyncio.sleep(0.005)


@asynccontextmanager
async def fake_node(store: Store, clock: VirtualClock | None = None) -> AsyncIterator[FakeHost]:
    """A fake node on `store` (its calls ended, its ringing cancelled on exit)."""
    host = FakeHost(store, clock or VirtualClock())
    try:
        yield host
    finally:
        await host.dialer.aclose()
        await host.calls.shutdown()
