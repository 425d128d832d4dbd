"""A campaign's lifecycle moves over HTTP write their events into the outbox and ring the
host's dialler (`control_api.campaigns.notify`): start and resume `campaign.started`, pause
`campaign.paused`, cancel `campaign.completed` in state cancelled, each for the campaign's
tenant with an id of its own; a refused move writes nothing and rings nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from config.telephony import DialPlanSettings
from control_api.analytics.events import CampaignEvent, CampaignStartedEvent, decode_event
from control_api.analytics.tables import OutboxRow
from control_api.campaigns.notify import Bell
from control_api.campaigns.rows import CampaignRow
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store

PLAN = DialPlanSettings(allowed_prefixes=("+1415",))
BODY: dict[str, Any] = {
    "name": "Reminders",
    "agent": "receptionist",
    "via": "sip",
    "contacts": [{"number": "+14155550001"}, {"number": "+14155550002"}],
    "schedule": {
        "timezone": "UTC",
        "windows": [{"days": ["mon"], "start": "09:00", "end": "17:00"}],
    },
    "max_concurrent": 2,
    "calls_per_minute": 10,
}


class RingingHost(FakeHost):
    """A host that runs a dialler: it counts the API's rings."""

    def __init__(self) -> None:
        super().__init__(max_calls=2)
        self.rings = 0

    def campaigns_changed(self) -> None:
        self.rings += 1


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    settings = msgspec.structs.replace(node_settings(), dialplan=PLAN)
    async with temp_store() as store:
        host = RingingHost()
        await host.attach_store(store)
        async with serve_node(host, settings) as served:
            yield served


async def events(node: Node) -> list[CampaignEvent]:
    async with node.host.store.session() as session:
        rows = await session.scalars(
            select(OutboxRow).where(OutboxRow.type.like("campaign.%")).order_by(OutboxRow.id)
        )
        found = [decode_event(row.payload) for row in rows]
    assert all(isinstance(e, CampaignEvent) for e in found)
    return [e for e in found if isinstance(e, CampaignEvent)]


async def test_each_move_writes_its_event_and_rings_the_dialler(node: Node) -> None:
    host = node.host
    assert isinstance(host, RingingHost) and isinstance(host, Bell)
    created = await node.http.post("/v1/campaigns", json=BODY, headers=auth())
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    for action in ("start", "pause", "resume", "cancel"):
        resp = await node.http.post(f"/v1/campaigns/{campaign_id}/{action}", headers=auth())
        assert resp.status_code == 200, resp.text
    refused = await node.http.post(f"/v1/campaigns/{campaign_id}/resume", headers=auth())
    assert refused.status_code == 409
    got = await events(node)
    assert [(e.__struct_config__.tag, e.state) for e in got] == [
        ("campaign.started", "running"),
        ("campaign.paused", "paused"),
        ("campaign.started", "running"),
        ("campaign.completed", "cancelled"),
    ]
    started = [e for e in got if isinstance(e, CampaignStartedEvent)]
    assert [e.resumed for e in started] == [False, True]
    assert {e.campaign_id for e in got} == {campaign_id}
    async with node.host.store.session() as session:
        owner = await session.scalar(select(CampaignRow.tenant_id))
    assert {e.tenant_id for e in got} == {owner}
    assert len({e.call_id for e in got}) == 4 and all(e.seq == 0 for e in got)
    assert host.rings == 4  # the refused move rang nothing
