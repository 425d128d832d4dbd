"""What the SIP dialer tells the campaign dialler about a call that was never answered, against
a real sipp far end through the node's pjsua2 user agent (fake host, no models): a refusal
before it rang raises `DialError` with the outcome (`outcome_of` its status: busy, no_answer,
unreachable, refused), and a call that rang and was then refused is reported to
`on_unanswered` hooks with its outcome, before its admission is given back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest

from control_api.host import DialError, ReportsUnanswered
from tests.support.harness import node_settings
from tests.support.host import FakeHost, temp_store
from tests.support.ports import free_port
from tests.support.sipp import listening_sipp, node_rtp_ports
from voicenode.sip_listener import sip_listener

pytestmark = pytest.mark.timeout(90)


@asynccontextmanager
async def sip_host() -> AsyncIterator[FakeHost]:
    settings = node_settings()
    settings = msgspec.structs.replace(
        settings, sip=msgspec.structs.replace(settings.sip, port=0, **node_rtp_ports())
    )
    host = FakeHost(max_calls=2)
    async with temp_store() as store:
        await host.attach_store(store)
        async with sip_listener(settings, host) as ua:
            assert ua is not None
            yield host


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("486", "busy"), ("480", "no_answer"), ("503", "unreachable"), ("404", "refused")],
)
async def test_a_refusal_before_ringing_carries_its_outcome(
    tmp_path: Path, status: str, outcome: str
) -> None:
    async with sip_host() as host:
        port = free_port()
        fill = {"STATUS": status, "REASON": "No", "HEADERS": "Server: far-end"}
        refusing = await listening_sipp("uas_refuse.xml", port, tmp_path, fill=fill)
        with pytest.raises(DialError) as refused:
            await host.dialers["sip"].dial(
                call_id="c1", tenant_id="demo", agent="receptionist", to=f"sip:a@127.0.0.1:{port}"
            )
        assert refused.value.outcome == outcome
        assert (await refusing).returncode == 0
        assert host.active_calls() == 0


async def test_a_call_refused_after_it_rang_is_reported_unanswered(tmp_path: Path) -> None:
    async with sip_host() as host:
        dialer = host.dialers["sip"]
        assert isinstance(dialer, ReportsUnanswered)
        reported: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
        dialer.on_unanswered(lambda c, o: reported.put_nowait((c, o, host.active_calls())))
        port = free_port()
        fill = {"STATUS": "486", "RING_MS": "1000"}
        ringing = await listening_sipp("uas_ring_refuse.xml", port, tmp_path, fill=fill)
        await dialer.dial(
            call_id="c2", tenant_id="demo", agent="receptionist", to=f"sip:a@127.0.0.1:{port}"
        )  # it rang: the dial returns, the call is being placed
        call_id, outcome, admitted = await asyncio.wait_for(reported.get(), 15)
        assert (call_id, outcome, admitted) == ("c2", "busy", 1)  # before the release
        assert (await ringing).returncode == 0
        assert host.active_calls() == 0


async def test_the_caller_id_is_the_invites_from(tmp_path: Path) -> None:
    """The campaign's `from` is the From's user and display name (sipp checks the header and
    fails the call when it does not match); a caller ID that could break the header is refused
    before anything is sent."""
    async with sip_host() as host:
        dialer = host.dialers["sip"]
        port = free_port()
        # sipp's XML reader takes no quote or angle bracket in an attribute: `.` stands for them
        expected = r"^ *.\+14155550100. .sip:\+14155550100@127\.0\.0\.1(:[0-9]+)?.;tag="
        fill = {"FROM": expected}
        checking = await listening_sipp("uas_refuse_from.xml", port, tmp_path, fill=fill)
        with pytest.raises(DialError) as refused:
            await dialer.dial(
                call_id="c3",
                tenant_id="demo",
                agent="receptionist",
                to=f"sip:a@127.0.0.1:{port}",
                caller_id="+14155550100",
            )
        assert refused.value.outcome == "busy"
        result = await checking
        assert result.returncode == 0, result.explain()
        for bad in ('+1415"<sip:x@evil>', "+1415\r\nX-Evil: 1", "a b", ""):
            with pytest.raises(DialError) as invalid:
                await dialer.dial(
                    call_id="c4",
                    tenant_id="demo",
                    agent="receptionist",
                    to="sip:a@127.0.0.1:9",
                    caller_id=bad,
                )
            assert invalid.value.status == 400
        assert host.active_calls() == 0
