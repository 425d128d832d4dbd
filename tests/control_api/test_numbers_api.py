"""Numbers over HTTP: unique across the fleet (409), routed to an existing agent of the tenant,
released by the owner, and found by `find_number` for inbound routing."""

from __future__ import annotations

from tests.control_api.harness import Node, auth
from tests.control_api.test_isolation import new_tenant


async def test_numbers_are_unique_across_tenants(node: Node) -> None:
    _, keys = await new_tenant(node, "Numbers")
    admin = auth(keys["admin"])
    resp = await node.http.post(
        "/v1/numbers", json={"number": "1000", "agent": "front"}, headers=admin
    )
    assert resp.status_code == 409  # demo's
    assert "demo" not in resp.json()["detail"]
    resp = await node.http.post(
        "/v1/numbers", json={"number": "2000", "agent": "receptionist"}, headers=admin
    )
    assert resp.status_code == 404 and "agent" in resp.json()["detail"]
    resp = await node.http.post(
        "/v1/numbers", json={"number": "not a number!", "agent": "front"}, headers=admin
    )
    assert resp.status_code == 400
    resp = await node.http.post(
        "/v1/numbers", json={"number": "sales", "agent": "front"}, headers=admin
    )
    assert resp.status_code == 201
    route = await node.host.find_number("sales")
    assert route is not None and route.agent.name == "front" and route.agent.version == 1
    assert (await node.http.delete("/v1/numbers/sales", headers=auth())).status_code == 404
    assert (await node.http.delete("/v1/numbers/sales", headers=admin)).status_code == 204
    assert await node.host.find_number("sales") is None
    demo = (await node.http.get("/v1/numbers", headers=auth())).json()
    assert [(n["number"], n["agent"]) for n in demo] == [("1000", "receptionist")]
