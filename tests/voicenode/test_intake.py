"""The call intake: the admission ticket gives the slot back on every path but a started call,
and each refusal is answered the same way by every transport (SIP, HTTP, AudioSocket)."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
from prometheus_client import REGISTRY

from agents.catalog import load_specs
from config.schema import Settings
from control_api import intake
from control_api.host import AgentRef, NumberRoute
from control_api.quotas import Quotas
from control_api.refusals import (
    CallRefused,
    Draining,
    EngineSaturated,
    NotAllowed,
    OverCapacity,
    QuotaExceeded,
    ShuttingDown,
    UnknownRoute,
)
from media.audiosocket import ErrorCode
from media.audiosocket_server import CallRefused as AudioSocketRefused
from media.call import CallInfo, Direction
from media.clock import MonotonicClock
from media.transport import Transport
from media.virtual import VirtualCall, VirtualTransport
from pipeline.events import CallEvent, EventCallback
from sip.message import parse_request
from sip.ua import IncomingInvite, Reject
from voicenode.admission import Admission, AdmittingHost
from voicenode.audiosocket_listener import NodeAudioSocketRouter
from voicenode.sip_listener import SipRouter

AGENT = AgentRef("demo", "receptionist", 1, load_specs()["receptionist"])


class GateHost(AdmittingHost):
    """A host whose calls run until `hang_up` is set; admission and quotas are the real ones."""

    def __init__(self, refusal: CallRefused | None = None) -> None:
        self.admission = Admission(2)
        self.quotas = Quotas()
        self.refusal = refusal
        self.hang_up = asyncio.Event()

    async def find_agent(
        self, tenant_id: str, name: str, version: int | None = None
    ) -> AgentRef | None:
        return AGENT if (tenant_id, name) == ("demo", "receptionist") else None

    async def find_number(self, number: str) -> NumberRoute | None:
        return NumberRoute(number, "demo", AGENT) if number == "1000" else None

    async def admit_for(self, tenant_id: str, call_id: str) -> None:
        if self.refusal is not None:
            raise self.refusal
        await super().admit_for(tenant_id, call_id)

    async def run_call(
        self, info: CallInfo, agent: str, transport: Transport, call: object, on: EventCallback
    ) -> None:
        await self.hang_up.wait()


class Live:
    def __init__(self, info: CallInfo) -> None:
        self.info = info
        self.control = VirtualCall(info)
        self.transport = VirtualTransport(MonotonicClock())
        self.outcome: str | None = None

    def publish(self, event: CallEvent) -> None:
        pass

    async def close(self, outcome: str) -> None:
        self.outcome = outcome
        await self.transport.close()


def info(transport: str = "webrtc") -> CallInfo:
    return CallInfo(
        call_id=uuid.uuid4().hex,
        tenant_id="demo",
        direction=Direction.INBOUND,
        transport=transport,  # type: ignore[arg-type]
    )


async def test_a_started_call_keeps_its_slot_until_it_ends() -> None:
    host = GateHost()
    async with intake.admit(host, info()) as ticket:
        task = ticket.start(Live(ticket.info), "receptionist")
    assert host.active_calls() == 1 and not ticket.held
    host.hang_up.set()
    await task
    assert host.active_calls() == 0


async def test_an_exception_before_the_start_releases() -> None:
    host = GateHost()
    with pytest.raises(ValueError, match="answer failed"):
        async with intake.admit(host, info()):
            assert host.active_calls() == 1
            raise ValueError("answer failed")
    assert host.active_calls() == 0
    assert host.quotas.active("demo") == 0


async def test_a_cancelled_intake_releases() -> None:
    host = GateHost()
    inside = asyncio.Event()

    async def answer() -> None:
        async with intake.admit(host, info()):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(answer())
    await inside.wait()
    assert host.active_calls() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert host.active_calls() == 0


async def test_a_start_refused_while_shutting_down_releases() -> None:
    host = GateHost()
    await host.calls.shutdown()
    with pytest.raises(ShuttingDown):
        async with intake.admit(host, info()) as ticket:
            ticket.start(Live(ticket.info), "receptionist")
    assert host.active_calls() == 0


async def test_a_refusal_holds_nothing_and_is_counted() -> None:
    host = GateHost()
    host.start_drain()
    before = REGISTRY.get_sample_value("voicenode_calls_refused_total", {"reason": "draining"})
    with pytest.raises(Draining):
        async with intake.admit(host, info()):
            pytest.fail("a refused call has no ticket")
    after = REGISTRY.get_sample_value("voicenode_calls_refused_total", {"reason": "draining"})
    assert (after or 0) - (before or 0) == 1
    assert host.active_calls() == 0 and host.quotas.active("demo") == 0


async def test_a_kept_ticket_outlives_the_block_until_released() -> None:
    host = GateHost()
    kept = await intake.hold(host, info())
    assert host.active_calls() == 1 and kept.held
    kept.release()
    kept.release()  # idempotent
    assert host.active_calls() == 0
    with pytest.raises(RuntimeError, match="not held"):
        kept.start(Live(kept.info), "receptionist")


# refusal, SIP status, HTTP status, AudioSocket error code, Retry-After
REFUSALS = [
    (OverCapacity("max_calls", 5), 503, 503, ErrorCode.REFUSED, "5"),
    (OverCapacity("loading", 5), 503, 503, ErrorCode.REFUSED, "5"),
    (Draining("draining", 30), 503, 503, ErrorCode.REFUSED, "30"),
    (EngineSaturated("engines_saturated", 5), 503, 503, ErrorCode.REFUSED, "5"),
    (QuotaExceeded("max_concurrent_calls", 5), 486, 429, ErrorCode.REFUSED, "5"),
    (QuotaExceeded("calls_per_minute", 12), 486, 429, ErrorCode.REFUSED, "12"),
    (UnknownRoute("unknown number"), 404, 404, ErrorCode.UNKNOWN_CALL, None),
    (NotAllowed("source"), 403, 403, ErrorCode.REFUSED, None),
    (ShuttingDown(), 503, 503, ErrorCode.REFUSED, None),
]


@pytest.mark.parametrize(("refusal", "sip", "http", "code", "retry"), REFUSALS)
async def test_each_transport_answers_a_refusal_from_the_one_table(
    refusal: CallRefused, sip: int, http: int, code: ErrorCode, retry: str | None
) -> None:
    host = GateHost(refusal)
    headers = {} if retry is None else {"Retry-After": retry}
    text = "INVITE sip:1000@node SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9\r\n\r\n"
    invite = IncomingInvite(request=parse_request(text), source="192.0.2.9")
    reject = await SipRouter(Settings().sip, host).route(invite)  # type: ignore[arg-type]
    assert isinstance(reject, Reject)
    assert (reject.status, reject.headers) == (sip, headers)

    router = NodeAudioSocketRouter(Settings(), host)  # type: ignore[arg-type]
    with pytest.raises(AudioSocketRefused) as refused:
        await router.route(uuid.uuid4())
    assert refused.value.code == code

    error = intake.http_refusal(refusal)
    assert (error.status_code, error.headers or {}) == (http, headers)
    assert host.active_calls() == 0


async def test_routing_refusals_use_the_same_table() -> None:
    host = GateHost()
    allowlist = msgspec.structs.replace(Settings().sip, allowed_sources=["10.0.0.0/8"])
    text = "INVITE sip:1000@node SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9\r\n\r\n"
    invite = IncomingInvite(request=parse_request(text), source="192.0.2.9")
    assert await SipRouter(allowlist, host).route(invite) == Reject(403, "Forbidden")  # type: ignore[arg-type]
    unknown = IncomingInvite(request=parse_request(text.replace("1000", "2000")), source="x")
    assert await SipRouter(Settings().sip, host).route(unknown) == Reject(404, "Not Found")  # type: ignore[arg-type]
    audiosocket = msgspec.structs.replace(
        Settings(), audiosocket=msgspec.structs.replace(Settings().audiosocket, default_agent="")
    )
    with pytest.raises(AudioSocketRefused) as refused:
        await NodeAudioSocketRouter(audiosocket, host).route(uuid.uuid4())  # type: ignore[arg-type]
    assert refused.value.code == ErrorCode.UNKNOWN_CALL
    assert host.active_calls() == 0
