"""One tenant cannot take the whole node: the real node (fake engines, real store, real HTTP,
real WebRTC offers) caps every tenant's live calls at `node.tenant_share` of
`node.max_calls`, whatever the tenant's own quota says; other tenants' calls go on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest

from control_api.quotas import QuotaExceeded, Quotas, TenantQuota, tenant_cap
from control_api.store import agents as agent_rows
from control_api.store import tenants as tenant_rows
from control_api.store.seed import file_specs
from pipeline.fakes import fake_engines
from tests.support.harness import auth, real_node_settings, serve_app
from tests.support.webrtc_peer import TestPeer
from voicenode.node import Node, open_node


def test_tenant_cap_is_a_share_of_max_calls_and_at_least_one() -> None:
    assert tenant_cap(8, 0.5) == 4
    assert tenant_cap(10, 0.3) == 3
    assert tenant_cap(1, 0.5) == 1
    assert tenant_cap(4, 1.0) == 4


def test_the_cap_bounds_a_tenant_whatever_its_own_quota() -> None:
    quotas = Quotas(tenant_cap=2)
    generous = TenantQuota(max_concurrent_calls=100)
    quotas.take_with("a", "c1", generous)
    quotas.take_with("a", "c2", TenantQuota())
    with pytest.raises(QuotaExceeded, match="max_concurrent_calls"):
        quotas.take_with("a", "c3", generous)
    quotas.take_with("b", "c4", generous)  # another tenant has its own share
    tight = TenantQuota(max_concurrent_calls=1)
    quotas.take_with("c", "c5", tight)
    with pytest.raises(QuotaExceeded):
        quotas.take_with("c", "c6", tight)  # a tighter own quota still applies


async def add_tenant(node: Node, tenant_id: str) -> None:
    text = file_specs()["receptionist"]
    async with node.store.session() as session:
        await tenant_rows.create_tenant(session, tenant_id, tenant_id=tenant_id)
        await agent_rows.create_agent(session, tenant_id, "receptionist", text)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    settings = real_node_settings(tmp_path / "node", max_calls=4)
    settings = msgspec.structs.replace(
        settings, node=msgspec.structs.replace(settings.node, tenant_share=0.5)
    )
    async with open_node(settings, fake_engines(["hello"], settings)) as node:
        await add_tenant(node, "acme")
        async with (
            serve_app(node, settings) as url,
            httpx.AsyncClient(base_url=url, timeout=20) as http,
        ):
            yield node, http


async def test_one_tenant_gets_429_at_its_share_and_another_still_calls(
    served: tuple[Node, httpx.AsyncClient],
) -> None:
    node, http = served
    peer = TestPeer(np.zeros(320, dtype=np.int16))
    try:
        sdp = (await peer.offer())["sdp"]
    finally:
        await peer.close()
    # no quota set for demo: before the share, it could have taken all 4 slots
    demo = {"agent": "receptionist", "sdp": sdp, "type": "offer", "tenant": "demo"}
    for _ in range(2):
        resp = await http.post("/v1/webrtc/offer", json=demo, headers=auth())
        assert resp.status_code == 200, resp.text
    over = await http.post("/v1/webrtc/offer", json=demo, headers=auth())
    assert over.status_code == 429, over.text
    assert "max_concurrent_calls" in over.text and over.headers["retry-after"] == "5"
    assert node.active_calls() == 2
    other = await http.post("/v1/webrtc/offer", json={**demo, "tenant": "acme"}, headers=auth())
    assert other.status_code == 200, other.text
    assert node.active_calls() == 3
