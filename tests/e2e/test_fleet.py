"""A fleet for real: Kamailio and RTPEngine (deploy/) in front of two `voicenode serve` processes.

Both nodes (``fleet-a``, ``fleet-b``: the embedded models, the demo tenant's receptionist, the
agent's voice deterministic) share one PostgreSQL store; Kamailio probes them with OPTIONS
every second (``DS_PING_INTERVAL=1``) and picks one round robin (``ds_select_dst`` algorithm 4,
as deploy/kamailio/kamailio.cfg configures it). Callers are sipp, streaming a G.711 line in
Piper's caller voice after the greeting; what they hear is tapped on loopback and transcribed.

Where a call ran, its tenant and how it ended come from the shared ``calls`` table (the node's
own record of the call), its transcript from a node's ``/v1/calls/{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.engines import Engines
from tests.support.pg import PostgresServer
from tests.support.pg import pg_server as pg_server  # pytest fixture
from tests.support.sipp import write_ulaw_wav
from tests.support.speech import heard_of, transcribe, words

from .fleet import (
    Caller,
    CallRecord,
    FleetNode,
    add_tenant,
    by_tag,
    open_fleet,
    place_call,
    transcript,
    wait_records,
)
from .sipp import run_sipp as run_e2e_sipp
from .sipstack import Kamailio, KamailioFactory, RtpEngine, sip_options, wait_for
from .sipstack import kamailio_fixture as kamailio_fixture  # pytest fixture
from .sipstack import rtpengine_fixture as rtpengine_fixture  # pytest fixture
from .test_sip_call import GREETING

pytestmark = [pytest.mark.slow, pytest.mark.timeout(280)]
Say = Callable[[str], npt.NDArray[np.int16]]
LINE = "Hi, I'd like to book a cleaning."
PROBES = {"DS_PING_INTERVAL": 1, "DS_INACTIVE_THRESHOLD": 1}
"""Kamailio probes every second; one good answer brings a node back into rotation."""
STATE_LIMIT_S = 30.0
"""Bound on a dispatcher state change the probes make (1 s apart; the machine is loaded)."""
RECEPTIONIST = (files("config") / "agents" / "receptionist.toml").read_text(encoding="utf-8")


@pytest.fixture
def store_url(pg_server: PostgresServer) -> str:
    return pg_server.create_database()


@pytest.fixture
async def fleet(tmp_path: Path, store_url: str) -> AsyncIterator[list[FleetNode]]:
    async with open_fleet(tmp_path / "fleet", store_url) as nodes:
        yield nodes


@pytest.fixture
def caller_wav(say: Say, tmp_path: Path) -> Path:
    return write_ulaw_wav(say(LINE), tmp_path / "caller.wav")


async def edge_for(kamailio: KamailioFactory, nodes: list[FleetNode], **numbers: str) -> Kamailio:
    """Kamailio over ``nodes`` with 1 s probes, once both are in rotation."""
    edge = kamailio([n.uri for n in nodes], {"1000": "demo", **numbers}, **PROBES)
    for node in nodes:
        await edge.wait_node_state(node.uri, "A", STATE_LIMIT_S)
    return edge


def node_named(nodes: list[FleetNode], name: str) -> tuple[FleetNode, FleetNode]:
    """(the node called ``name``, the other one)."""
    (this,) = [n for n in nodes if n.name == name]
    (other,) = [n for n in nodes if n.name != name]
    return this, other


async def one_live_call(store_url: str) -> CallRecord:
    """The record of the one call in the store, once it is there (the call is up)."""
    (record,) = await wait_records(store_url, lambda rs: len(rs) == 1, "the first call's record")
    assert not record.ended, record
    return record


async def short_calls(edge: Kamailio, tmp: Path, wav: Path, count: int = 2) -> list[Caller]:
    """``count`` calls at once, each saying the line after a second and hanging up."""
    calls = [
        place_call(edge.port, tmp / f"call{i}", wav, lead_ms=1000, hold_ms=2000)
        for i in range(count)
    ]
    callers = await asyncio.gather(*calls)
    for caller in callers:
        assert caller.result.returncode == 0, caller.result.explain()
    return list(callers)


async def test_calls_spread_over_both_nodes_and_speech_crosses_rtpengine_both_ways(
    fleet: list[FleetNode],
    kamailio: KamailioFactory,
    rtpengine: RtpEngine,
    engines: Engines,
    caller_wav: Path,
    store_url: str,
    tmp_path: Path,
) -> None:
    """Two callers at once, one per tenant (1000: demo; 2000: a tenant made through node a's
    API, so in the shared store): round robin gives each node one call; each caller hears the
    greeting and the answer through RTPEngine, and its line is in that call's transcript; the
    record carries the tenant Kamailio's numbers table named. A number whose table tenant is
    not the number's owner in the store is refused by the node (the header is checked)."""
    a, b = fleet
    acme = await add_tenant(a, "Acme Dental", ["2000", "2001"], RECEPTIONIST)
    edge = await edge_for(kamailio, fleet, **{"2000": acme, "2001": "demo"})
    # the line after the greeting (5.5 s), then 15 s for the answer: two calls at once on a
    # loaded machine answer later than test_sip_call's one (9 s)
    demo_call, acme_call = await asyncio.gather(
        place_call(edge.port, tmp_path / "c1000", caller_wav, service="1000", hold_ms=15000),
        place_call(edge.port, tmp_path / "c2000", caller_wav, service="2000", hold_ms=15000),
    )
    records = await wait_records(
        store_url, lambda rs: len(rs) == 2 and all(r.ended for r in rs), "both calls ended"
    )
    demo, acme_record = by_tag(records, demo_call.tag), by_tag(records, acme_call.tag)
    assert {demo.node, acme_record.node} == {a.name, b.name}, records
    assert (demo.tenant_id, acme_record.tenant_id) == ("demo", acme)
    for caller, record in ((demo_call, demo), (acme_call, acme_record)):
        assert caller.result.returncode == 0, caller.result.explain()
        assert any(rtpengine.relays(p) for p in caller.media_ports()), caller.result.messages
        lines = await transcript(b, record.id)  # either node serves every call's record
        said = " ".join(line["text"] for line in lines if line["role"] == "user")
        assert {"book", "cleaning"} <= words(said), (record, lines)
        heard = words(await transcribe(engines, caller.audio))
        assert len(heard_of(GREETING, heard)) >= 2 and heard_of(["name"], heard), (record, heard)
        print(f"{record.node} ({record.tenant_id}): caller heard {sorted(heard)}")

    refused = await run_e2e_sipp(
        "uac_refused.xml", edge.address, tmp_path / "c2001", service="2001"
    )
    assert refused.returncode == 0, refused.explain()
    assert refused.statuses()[-1] == 404
    mismatch = "sip: the proxy's tenant header does not own the number"
    assert sum(len(n.logged(mismatch)) for n in fleet) == 1
    assert len(await wait_records(store_url, lambda rs: len(rs) == 2, "no third call")) == 2


async def test_a_draining_node_finishes_its_call_and_the_other_takes_the_next(
    fleet: list[FleetNode],
    kamailio: KamailioFactory,
    caller_wav: Path,
    store_url: str,
    tmp_path: Path,
) -> None:
    """SIGTERM to the node with a live call: it answers OPTIONS 503, the probe takes it out of
    rotation, the next two calls go to the other node; the live call runs to the caller's
    hang-up (recorded as an ordinary call), then the drained process exits 0."""
    edge = await edge_for(kamailio, fleet)
    live = asyncio.create_task(
        place_call(edge.port, tmp_path / "live", caller_wav, lead_ms=5500, hold_ms=15000)
    )
    try:
        busy, other = node_named(fleet, (await one_live_call(store_url)).node)
        busy.signal(signal.SIGTERM)
        await wait_for(lambda: sip_options(busy.sip_port, 1.0) == 503, "OPTIONS 503", 30)
        await edge.wait_node_state(busy.uri, "I", STATE_LIMIT_S)
        callers = await short_calls(edge, tmp_path / "next", caller_wav)
        first = await live
    finally:
        await cancel(live)
    assert first.result.returncode == 0, first.result.explain()  # its BYE answered 200
    assert await busy.wait_exit(60) == 0  # drained, not cut
    records = await wait_records(
        store_url, lambda rs: len(rs) == 3 and all(r.ended for r in rs), "three calls ended"
    )
    kept = by_tag(records, first.tag)
    assert kept.node == busy.name and kept.disposition != "failed", kept
    assert kept.end_reason == "hangup", kept
    assert [by_tag(records, c.tag).node for c in callers] == [other.name, other.name], records
    assert busy.logged("drained: no live calls")


async def test_a_killed_node_fails_over_and_its_call_is_recorded_failed_on_restart(
    fleet: list[FleetNode],
    kamailio: KamailioFactory,
    caller_wav: Path,
    store_url: str,
    tmp_path: Path,
) -> None:
    """SIGKILL to the node with a live call: the next two calls, placed at once, go to the other
    node (failing over from the dead one if the probes have not yet taken it out of rotation,
    which they do within about a probe interval plus FR_TIMER); restarted (same name, same
    store), the node closes the call it left open as failed (`node_restarted`) and the probes
    bring it back into rotation."""
    edge = await edge_for(kamailio, fleet)
    live = asyncio.create_task(
        place_call(edge.port, tmp_path / "live", caller_wav, lead_ms=5500, hold_ms=60000)
    )
    try:
        cut = await one_live_call(store_url)
        victim, survivor = node_named(fleet, cut.node)
        victim.signal(signal.SIGKILL)
        killed = time.monotonic()
        assert await victim.wait_exit(30) == -signal.SIGKILL

        # at once: an INVITE the dispatcher still sends to the dead node times out (FR_TIMER)
        # and fails over; once a probe has gone unanswered the node is out of rotation
        async def out_of_rotation() -> float:
            await edge.wait_node_state(victim.uri, "I", STATE_LIMIT_S)
            return time.monotonic() - killed

        callers, took_s = await asyncio.gather(
            short_calls(edge, tmp_path / "next", caller_wav), out_of_rotation()
        )
        print(f"{victim.name} out of rotation {took_s:.1f} s after SIGKILL")
    finally:
        await cancel(live)  # the caller of the cut call gives up (its BYE would time out)
    records = await wait_records(
        store_url, lambda rs: sum(r.ended for r in rs) == 2, "the two new calls ended"
    )
    assert [by_tag(records, c.tag).node for c in callers] == [survivor.name] * 2, records
    assert [r for r in records if not r.ended] == [cut]  # nobody closed the cut call yet

    victim.start()
    await victim.wait_ready()
    records = await wait_records(store_url, lambda rs: all(r.ended for r in rs), "the cut call")
    (closed,) = [r for r in records if r.id == cut.id]
    assert (closed.end_reason, closed.disposition) == ("node_restarted", "failed"), closed
    assert victim.logged("call left open by a stopped node recorded as failed")
    await edge.wait_node_state(victim.uri, "A", STATE_LIMIT_S)


async def cancel(task: asyncio.Task[Caller]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
