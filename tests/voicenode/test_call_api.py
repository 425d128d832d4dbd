"""Outbound calls through the API and the CLI: `POST /v1/calls` dials a real sipp UAS through
the node's SIP user agent (fake host: no models), then hang-up by the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest

from config.schema import DialPlanSettings
from media.call import Direction
from sip.ua import UserAgent
from tests.support.harness import ADMIN_KEY, Node, auth, node_settings, serve_node
from tests.support.host import FakeHost
from tests.support.ports import free_port
from tests.support.sipp import SippResult, listening_sipp, node_rtp_ports
from voicenode.cli import main
from voicenode.sip_listener import sip_listener

pytestmark = pytest.mark.timeout(90)


@asynccontextmanager
async def sip_node() -> AsyncIterator[tuple[Node, UserAgent]]:
    settings = node_settings()
    settings = msgspec.structs.replace(
        settings,
        sip=msgspec.structs.replace(settings.sip, port=0, **node_rtp_ports()),
        dialplan=DialPlanSettings(allowed_prefixes=("+1555",), allowed_domains=("127.0.0.1",)),
    )
    host = FakeHost(max_calls=2)
    async with serve_node(host, settings) as node, sip_listener(settings, host) as ua:  # type: ignore[arg-type]
        assert ua is not None
        yield node, ua


async def uas(tmp: Path) -> tuple[str, asyncio.Task[SippResult]]:
    port = free_port()
    return f"sip:agent@127.0.0.1:{port}", await listening_sipp("uas", port, tmp)


async def test_post_calls_dials_and_the_api_hangs_up(tmp_path: Path) -> None:
    async with sip_node() as (node, _):
        target, answered = await uas(tmp_path)
        body = {"agent": "receptionist", "to": target, "tenant": "demo", "recording": "on"}
        headers = {**auth(), "Idempotency-Key": "order-42"}
        placed = await node.http.post("/v1/calls", json=body, headers=headers)
        assert placed.status_code == 201, placed.text
        call_id = placed.json()["call_id"]
        again = await node.http.post("/v1/calls", json=body, headers=headers)
        assert again.status_code == 201 and again.json()["call_id"] == call_id  # not re-dialled
        info = await asyncio.wait_for(node.host.started.get(), 15)
        assert info.call_id == call_id and info.direction == Direction.OUTBOUND
        assert info.transport == "sip" and info.to_uri == target
        assert node.host.recorded_as[call_id] == "on"  # the call's own recording choice
        hung = await node.http.post(f"/v1/calls/{call_id}/hangup", headers=auth())
        assert hung.status_code == 204
        await asyncio.wait_for(node.host.finished.get(), 5)
        result = await answered
        assert result.returncode == 0, result.explain()
        assert node.host.started.empty()  # one call, despite the retried request
        gone = await node.http.post(f"/v1/calls/{call_id}/hangup", headers=auth())
        assert gone.status_code == 404


async def test_post_calls_errors() -> None:
    async with sip_node() as (node, _):
        cases = [
            ({"agent": "nobody", "to": "sip:x@127.0.0.1", "tenant": "demo"}, 404),
            ({"agent": "receptionist", "to": "+15551234", "tenant": "demo"}, 400),  # no trunk
            ({"agent": "receptionist", "to": "5551234", "tenant": "demo"}, 403),  # not in plan
            ({"agent": "receptionist", "to": "sip:x@10.0.0.1", "tenant": "demo"}, 403),
            ({"agent": "receptionist", "to": "sip:x@127.0.0.1\r\nX: y", "tenant": "demo"}, 400),
            ({"agent": "receptionist", "to": "sip:x@127.0.0.1", "via": "asterisk"}, 503),
            ({"agent": "receptionist", "to": "sip:x@127.0.0.1", "via": "fax"}, 400),
            ({"agent": "receptionist"}, 400),
            ({"agent": "receptionist", "to": "sip:x@127.0.0.1", "recording": "always"}, 400),
            # not placed (no trunk): its recording choice is not kept
            (
                {"agent": "receptionist", "to": "+15551234", "tenant": "demo", "recording": "on"},
                400,
            ),
        ]
        for body, status in cases:
            response = await node.http.post("/v1/calls", json=body, headers=auth())
            assert response.status_code == status, (body, response.text)
            if body.get("recording") == "on":
                assert "SIP trunk" in response.text  # refused by the dialer, after the choice
        anonymous = await node.http.post("/v1/calls", json=cases[0][0])
        assert anonymous.status_code == 401
        transfer = await node.http.post(
            "/v1/calls/nope/transfer", json={"target": "sip:a@b"}, headers=auth()
        )
        assert transfer.status_code == 404
        assert node.host.active_calls() == 0
        assert node.host.recording_choices == {}


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        ("404", "No such user alice in accounts", "the call was refused"),
        ("486", "Busy with alice, try bob", "the callee is busy"),
        ("503", "Host db-7.internal down", "the destination could not be reached"),
    ],
)
async def test_a_refusal_says_a_fixed_outcome_not_the_far_ends_text(
    tmp_path: Path, status: str, reason: str, outcome: str
) -> None:
    """What the far end says about its users is not passed on (no scanning oracle)."""
    async with sip_node() as (node, _):
        port = free_port()
        fill = {"STATUS": status, "REASON": reason, "HEADERS": "Server: far-end"}
        refusing = await listening_sipp("uas_refuse.xml", port, tmp_path, fill=fill)
        body = {"agent": "receptionist", "to": f"sip:alice@127.0.0.1:{port}", "tenant": "demo"}
        placed = await node.http.post("/v1/calls", json=body, headers=auth())
        assert placed.status_code == 502, placed.text
        assert placed.json()["detail"] == f"the call did not connect: {outcome}"
        assert status not in placed.text and "alice" not in placed.text
        assert (await refusing).returncode == 0
        assert node.host.active_calls() == 0


async def test_the_cli_places_a_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICENODE_ADMIN_KEY", ADMIN_KEY)
    async with sip_node() as (node, _):
        target, answered = await uas(tmp_path)
        code = await asyncio.to_thread(
            main, ["call", target, "--agent", "receptionist", "--url", node.url]
        )
        assert code == 0
        call_id = capsys.readouterr().out.strip()
        info = await asyncio.wait_for(node.host.started.get(), 15)
        assert info.call_id == call_id
        await node.http.delete(f"/v1/calls/{call_id}", headers=auth())
        await asyncio.wait_for(node.host.finished.get(), 5)
        assert (await answered).returncode == 0
        bad = await asyncio.to_thread(
            main, ["call", target, "--agent", "nobody", "--url", node.url]
        )
        assert bad == 1
        assert "404" in capsys.readouterr().err
