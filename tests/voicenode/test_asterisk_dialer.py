"""The Asterisk dialer (`voicenode.asterisk.AsteriskDialer`) against the AMI double (the AMI
protocol over TCP) on a fake host: the caller ID it sends in Originate's `CallerID`, and
what it reports about calls that were never answered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from config.schema import AmiSettings, AudioSocketSettings, Settings
from control_api.campaigns.dialled import disposition_of
from control_api.campaigns.lifecycle import Disposition
from control_api.host import DialError, ReportsUnanswered
from tests.support.ami_double import AmiDouble
from tests.support.host import FakeHost, temp_store
from voicenode.audiosocket_listener import audiosocket_listener

SECRET = "dialer-secret"


@pytest.fixture
async def host() -> AsyncIterator[FakeHost]:
    async with temp_store() as store:
        h = FakeHost(max_calls=2)
        await h.attach_store(store)
        yield h
        assert h.active_calls() == 0


@asynccontextmanager
async def with_ami(host: FakeHost, ami: AmiDouble, caller_id: str = "") -> AsyncIterator[None]:
    settings = Settings(
        audiosocket=AudioSocketSettings(port=0, default_agent=""),
        ami=AmiSettings(
            host="127.0.0.1", port=ami.port, username="voicenode", secret=SECRET,
            originate_channel="PJSIP/{to}@carrier", backoff_initial_s=0.01, caller_id=caller_id,
        ),
    )  # fmt: skip
    async with audiosocket_listener(settings, host) as server:
        assert server is not None
        await ami.wait_until(lambda: ami.logins == 1)
        yield


async def test_the_caller_id_goes_in_originates_caller_id(host: FakeHost) -> None:
    async with AmiDouble(secret=SECRET) as ami, with_ami(host, ami, caller_id="+15550000"):
        dialer = host.dialers["asterisk"]
        ami.originate_outcome = "busy"  # the admission goes back at once
        await dialer.dial(
            call_id=uuid.uuid4().hex, tenant_id="demo", agent="a", to="100", caller_id="+15550199"
        )
        await dialer.dial(call_id=uuid.uuid4().hex, tenant_id="demo", agent="a", to="101")
        await ami.wait_until(lambda: len(ami.named("originate")) == 2)
        first, second = ami.named("originate")
        assert first["callerid"] == ["+15550199"]  # the campaign's `from`
        assert second["callerid"] == ["+15550000"]  # none given: `ami.caller_id`
        for bad in ('"Evil" <1>', "1\r\nAction: Hangup", "1,2", ""):
            with pytest.raises(DialError) as invalid:
                await dialer.dial(
                    call_id=uuid.uuid4().hex, tenant_id="demo", agent="a", to="100", caller_id=bad
                )
            assert invalid.value.status == 400
        assert len(ami.named("originate")) == 2  # nothing sent for those
        async with asyncio.timeout(5):
            await host.wait_idle()  # both released on OriginateResponse: Failure


@pytest.mark.parametrize("hangup_first", [False, True])
@pytest.mark.parametrize(
    ("failure", "outcome", "disposition"),
    [
        ("busy", "busy", Disposition.BUSY),
        ("no_answer", "no_answer", Disposition.NO_ANSWER),
        ("congestion", "unreachable", Disposition.FAILED),
        ("hung_up", "refused", Disposition.FAILED),
    ],
)
async def test_an_unanswered_originate_is_reported_with_its_outcome(
    host: FakeHost, failure: str, outcome: str, disposition: Disposition, hangup_first: bool
) -> None:
    """A failed OriginateResponse's Reason (5 busy, 3 rang out, 8 congestion, 1 hung up) is
    reported to `on_unanswered` before the admission goes back, whether the channel's Hangup
    came before the response or after it; the campaign dialler reads it as the disposition."""
    async with AmiDouble(secret=SECRET) as ami, with_ami(host, ami):
        dialer = host.dialers["asterisk"]
        assert isinstance(dialer, ReportsUnanswered)
        reported: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
        dialer.on_unanswered(lambda c, o: reported.put_nowait((c, o, host.active_calls())))
        ami.originate_outcome, ami.hangup_first = failure, hangup_first
        call_id = uuid.uuid4().hex
        await dialer.dial(call_id=call_id, tenant_id="demo", agent="a", to="+15550100")
        async with asyncio.timeout(5):
            got = await reported.get()
            await host.wait_idle()
        assert got == (call_id, outcome, 1)  # reported while still admitted
        assert reported.empty()
        refusal = got[1]
        assert disposition_of(answered=False, ended=None, amd=None, refusal=refusal) == disposition
