"""Kamailio (deploy/kamailio/kamailio.cfg) relays in-dialog requests only inside its dialogs.

A To-tag and a Route naming the proxy are trivial to forge; a proxy that relays such a request
to whatever request-URI it carries is an open relay (toll fraud, scanning, BYE/re-INVITE
injection into someone else's calls). Here a bystander sipp UAS listens on another port; the
attacker (sipp) aims forged in-dialog requests at it through the real Kamailio. The proxy
answers 403 itself, and a canary OPTIONS sent straight to the bystander afterwards is the
first and only request it ever gets. Real calls keep working: the caller's BYE and the node's
BYE both cross the proxy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .sipp import SCENARIOS, SippServer, run_sipp, sipp_server
from .sipstack import KamailioFactory, sip_options
from .sipstack import kamailio_fixture as kamailio_fixture  # pytest fixture
from .sipstack import rtpengine_fixture as rtpengine_fixture  # pytest fixture


async def assert_untouched(bystander: SippServer) -> None:
    """The bystander answers our canary, which must be the first thing it ever received."""
    assert await asyncio.to_thread(sip_options, bystander.port, 5.0) == 200


def forged_scenario(workdir: Path, method: str) -> str:
    """uac_forged_in_dialog.xml with its method filled in, as a file of its own."""
    text = (SCENARIOS / "uac_forged_in_dialog.xml").read_text().replace("@METHOD@", method)
    path = workdir / f"uac_forged_{method.lower()}.xml"
    path.write_text(text)
    return str(path)


def received_methods(server: SippServer) -> list[str]:
    assert server.result is not None
    return [m.split(" ", 1)[0] for m in server.result.received()]


@pytest.mark.parametrize("method", ["BYE", "INVITE", "MESSAGE"])
async def test_forged_in_dialog_request_is_refused_not_relayed(
    kamailio: KamailioFactory, tmp_path: Path, method: str
) -> None:
    async with sipp_server("uas_options_ok.xml", tmp_path / "bystander") as bystander:
        edge = kamailio([])
        attack = await run_sipp(
            forged_scenario(tmp_path, method),
            edge.address,
            tmp_path / "attacker",
            extra=["-key", "victim_port", str(bystander.port)],
        )
        assert attack.returncode == 0, attack.explain()
        assert attack.statuses()[-1] == 403
        await assert_untouched(bystander)
    assert bystander.result is not None
    assert bystander.result.returncode == 0, bystander.result.explain()
    assert received_methods(bystander) == ["OPTIONS"]
    assert "matches no dialog: refused" in edge.daemon.log(200)


async def test_request_of_a_real_dialog_cannot_leave_for_another_host(
    kamailio: KamailioFactory, tmp_path: Path
) -> None:
    """The caller knows its dialog (Call-ID, tags, route set with the dialog cookie) and aims a
    MESSAGE of it at the bystander: 403. Its BYE then reaches the node as usual."""
    async with (
        sipp_server("uas_options_ok.xml", tmp_path / "bystander") as bystander,
        sipp_server("uas_answer.xml", tmp_path / "node") as node,
    ):
        edge = kamailio([node.uri], DS_PING_INTERVAL=60)
        caller = await run_sipp(
            "uac_call_then_forged.xml",
            edge.address,
            tmp_path / "caller",
            extra=["-key", "victim_port", str(bystander.port)],
        )
        assert caller.returncode == 0, caller.explain()
        await assert_untouched(bystander)
    assert bystander.result is not None
    assert bystander.result.returncode == 0, bystander.result.explain()
    assert received_methods(bystander) == ["OPTIONS"]
    assert node.result is not None
    assert node.result.returncode == 0, node.result.explain()
    assert received_methods(node) == ["INVITE", "ACK", "BYE"]
    assert "not towards a voice node: refused" in edge.daemon.log(200)


async def test_node_hangs_up_through_the_proxy(kamailio: KamailioFactory, tmp_path: Path) -> None:
    """The node's own in-dialog request (its BYE, to the caller's Contact) belongs to the
    dialog and is relayed."""
    async with sipp_server("uas_answer_hangup.xml", tmp_path / "node") as node:
        edge = kamailio([node.uri], DS_PING_INTERVAL=60)
        caller = await run_sipp("uac_wait_bye.xml", edge.address, tmp_path / "caller")
        assert caller.returncode == 0, caller.explain()
    assert node.result is not None
    assert node.result.returncode == 0, node.result.explain()
    assert received_methods(node) == ["INVITE", "ACK", "SIP/2.0"]
    assert "refused" not in edge.daemon.log(200)
