"""A caller's REFER (issue 12, item 2): pjsua2 by itself accepts an in-dialog REFER and calls
the Refer-To URI from the node, so any caller could make the node dial anywhere. The node
declines it (603) and calls no one; the call goes on until the caller hangs up."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sip.ua import UserAgent
from tests.support.ports import free_port
from tests.support.sipp import run_sipp
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def host() -> AsyncIterator[SignalHost]:
    async with stored(SignalHost(max_calls=2)) as h:
        yield h


@pytest.fixture
async def ua(host: SignalHost) -> AsyncIterator[UserAgent]:
    async with sip_listener(sip_settings(), host) as agent:  # type: ignore[arg-type]
        assert agent is not None
        yield agent


async def test_a_callers_refer_is_declined_and_no_one_is_called(
    ua: UserAgent, host: SignalHost, tmp_path: Path
) -> None:
    victim_port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
        victim.bind(("127.0.0.1", victim_port))  # whatever the node sends there, kept
        victim.setblocking(False)
        target = f"sip:+19005550100@127.0.0.1:{victim_port}"
        result = await run_sipp("uac_refers.xml", ua.port, tmp_path, fill={"TARGET": target})
        assert result.returncode == 0, result.explain()
        await asyncio.wait_for(host.finished.get(), 10)
        assert await ua.call_count() == 0  # the caller's call only, and it has ended
        received = []
        while True:
            try:
                received.append(victim.recv(65536))
            except BlockingIOError:
                break
    assert received == [], "the node sent SIP to the REFER's target"
    (refused,) = result.received("SIP/2.0 603")
    assert refused.header("CSeq") == "2 REFER"
    assert host.active_calls() == 0
