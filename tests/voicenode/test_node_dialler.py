"""The campaign dialler inside the real node (`open_node`: store, admission, `LiveCalls`, the
analytics recorder, the HTTP API; fake speech engines on the real clock), with a dialer that
admits its calls through the node's intake as the SIP dialer does: a campaign started over
HTTP is dialled at once (the API rings the dialler), an answered call's attempt is linked to
its call record (`GET /v1/calls/{id}`), a busy number is busy, the contact's variables are
given to its call, and the campaign completes with its events in the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy import select

from config.telephony import DialPlanSettings
from control_api import intake
from control_api.analytics.tables import OutboxRow
from control_api.host import DialError
from media.call import CallInfo, Direction
from tests.support.harness import auth
from tests.support.served_node import VirtualLiveCall, light_node_settings, served_light_node
from voicenode.node import Node

HUMAN, BUSY = "+14155550101", "+14155550102"
LIMIT_S = 60.0


class HangingUpDialer:
    """Dials like `SipDialer`: admitted through the node's intake; `HUMAN` answers and hangs
    up at once (before the answering-machine check decides), `BUSY` is refused before it rings
    (the admission given back)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.variables: dict[str, Mapping[str, str] | None] = {}

    async def dial(
        self, *, call_id: str, tenant_id: str, agent: str, to: str, caller_id: str | None = None
    ) -> None:
        self.variables[to] = self._node.call_variables.get(call_id)
        info = CallInfo(
            call_id=call_id, tenant_id=tenant_id, direction=Direction.OUTBOUND, to_uri=to
        )
        async with intake.admit(self._node, info) as ticket:
            if to == BUSY:
                raise DialError("the call did not connect: the callee is busy", 502, "busy")
            call = VirtualLiveCall(info)
            ticket.start(call, agent)
            call.transport.source.close()  # the far end answers and hangs up at once


def body() -> dict[str, Any]:
    return {
        "name": "Reminders",
        "agent": "receptionist",
        "via": "sip",
        "contacts": [
            {"number": HUMAN, "variables": {"name": "Ann"}},
            {"number": BUSY, "variables": {"name": "Bob"}},
        ],
        "schedule": {
            "timezone": "UTC",
            "windows": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                         "start": "00:00", "end": "24:00"}],
        },
        "max_concurrent": 2,
        "calls_per_minute": 10,
        "retry": {"max_attempts": 1, "on": []},
    }  # fmt: skip


async def until_completed(http: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
    async with asyncio.timeout(LIMIT_S):
        while True:
            shown = (await http.get(f"/v1/campaigns/{campaign_id}", headers=auth())).json()
            if shown["state"] == "completed":
                return dict(shown)
            await asyncio.sleep(0.05)


async def until_recorded(http: httpx.AsyncClient, call_id: str) -> None:
    """The call's record (the recorder writes it after the call's end)."""
    async with asyncio.timeout(LIMIT_S):
        while (await http.get(f"/v1/calls/{call_id}", headers=auth())).status_code != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_a_campaign_started_over_http_is_dialled_and_recorded(tmp_path: Path) -> None:
    settings = light_node_settings(tmp_path)
    settings = msgspec.structs.replace(
        settings, dialplan=DialPlanSettings(allowed_prefixes=("+1415",))
    )
    async with served_light_node(settings) as (node, http):
        dialer = HangingUpDialer(node)
        node.dialers["sip"] = dialer
        created = await http.post("/v1/campaigns", json=body(), headers=auth())
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        started = await http.post(f"/v1/campaigns/{campaign_id}/start", headers=auth())
        assert started.status_code == 200
        shown = await until_completed(http, campaign_id)
        assert shown["progress"]["by_disposition"] == {"answered_human": 1, "busy": 1}
        page = await http.get(f"/v1/campaigns/{campaign_id}/contacts", headers=auth())
        contacts = {c["number"]: c for c in page.json()["contacts"]}
        (human,) = contacts[HUMAN]["history"]
        (busy,) = contacts[BUSY]["history"]
        assert (human["disposition"], busy["disposition"]) == ("answered_human", "busy")
        assert busy["call_id"] is None
        await until_recorded(http, human["call_id"])
        assert dialer.variables == {HUMAN: {"name": "Ann"}, BUSY: {"name": "Bob"}}
        assert node.call_variables == {} and node.call_on_machine == {}
        async with node.store.session() as session:
            types = list(await session.scalars(select(OutboxRow.type).order_by(OutboxRow.id)))
        assert types.count("contact.attempted") == 2
        assert [t for t in types if t.startswith("campaign.")] == [
            "campaign.started",
            "campaign.completed",
        ]
