"""`POST /v1/calls/{id}/transfer` on a SIP call, against the real HTTP API, the node's SIP
user agent and a sipp caller (issue 12, items 2 and 3): a malformed target (400) or one
outside the operator's dial plan (403) sends no REFER and the call goes on; an allowed one is
REFERred in its canonical form, which sipp checks in Refer-To."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import msgspec
import pytest

from config.schema import DialPlanSettings
from tests.support.harness import auth, node_settings, serve_node
from tests.support.sipp import node_rtp_ports, run_sipp
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, stored

pytestmark = pytest.mark.timeout(90)

REFUSED = [
    ("sip:desk@127.0.0.1:5099\r\nContact: <sip:evil@evil.example>", 400),
    ("sip:desk@127.0.0.1:5099;maddr=evil.example", 400),
    ("sip:desk@127.0.0.1:5099?Route=%3Csip:evil.example%3E", 400),
    ("sip:desk@evil.example", 403),
    ("+19005550100", 403),
]


async def test_api_transfers_of_a_sip_call_follow_the_dial_plan(tmp_path: Path) -> None:
    settings = node_settings()
    settings = msgspec.structs.replace(
        settings,
        sip=msgspec.structs.replace(settings.sip, port=0, **node_rtp_ports()),
        dialplan=DialPlanSettings(allowed_domains=("127.0.0.1",)),
    )
    target = "sip:desk@127.0.0.1:5099"
    async with (
        stored(SignalHost(max_calls=2)) as host,
        serve_node(host, settings) as node,  # type: ignore[arg-type]
        sip_listener(settings, host) as ua,  # type: ignore[arg-type]
    ):
        assert ua is not None
        caller = asyncio.create_task(
            run_sipp("uac_transferred.xml", ua.port, tmp_path, fill={"TARGET": re.escape(target)})
        )
        info = await asyncio.wait_for(host.started.get(), 15)
        url = f"/v1/calls/{info.call_id}/transfer"
        for refused, status in REFUSED:
            answer = await node.http.post(url, json={"target": refused}, headers=auth())
            assert answer.status_code == status, (refused, answer.text)
            assert "evil" not in answer.text
        assert host.calls.get(info.call_id) is not None  # no REFER went out: the call goes on
        done = await node.http.post(url, json={"target": target}, headers=auth())
        assert done.status_code == 204, done.text
        result = await caller
        assert result.returncode == 0, result.explain()  # one REFER, Refer-To = the target
        await asyncio.wait_for(host.finished.get(), 5)
    (refer,) = result.received("REFER ")
    assert "evil" not in refer.text
