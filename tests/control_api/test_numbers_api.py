"""Numbers over HTTP: unique across the fleet (409), routed to an existing agent of the tenant,
claimed by a tenant only within the ranges the platform admin gave it (403 otherwise, before any
409), released by the owner, and found by `find_number` for inbound routing."""

from __future__ import annotations

from tests.control_api.test_isolation import new_tenant
from tests.support.harness import Node, auth


async def set_ranges(node: Node, tenant: str, ranges: list[str]) -> None:
    resp = await node.http.put(
        f"/v1/tenants/{tenant}/number-ranges", json={"ranges": ranges}, headers=auth()
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"ranges": sorted(set(ranges))}


async def test_numbers_are_unique_across_tenants(node: Node) -> None:
    tenant, keys = await new_tenant(node, "Numbers")
    admin = auth(keys["admin"])
    await set_ranges(node, tenant, ["1000", "2000", "sales*"])
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


async def test_a_tenant_claims_numbers_only_within_its_ranges(node: Node) -> None:
    """The attack: a tenant admin claims a DID it was never given (a carrier number routed to
    this fleet, another customer's next number) and so takes its inbound calls."""
    tenant, keys = await new_tenant(node, "Ranges")
    admin = auth(keys["admin"])
    before = {n["number"] for n in (await node.http.get("/v1/numbers", headers=admin)).json()}
    for number in ("+15557770001", "+442071234567", "support", "1001"):
        resp = await node.http.post(
            "/v1/numbers", json={"number": number, "agent": "front"}, headers=admin
        )
        assert resp.status_code == 403, (number, resp.text)
        assert "range" in resp.json()["detail"]
        assert await node.host.find_number(number) is None
    # taken numbers outside its ranges answer the same 403: no probing who holds what
    resp = await node.http.post(
        "/v1/numbers", json={"number": "1000", "agent": "front"}, headers=admin
    )
    assert resp.status_code == 403
    route = await node.host.find_number("1000")
    assert route is not None and route.tenant_id == "demo"  # demo's number, untouched

    # the platform admin gives it a block and one name; a tenant cannot change its own ranges
    resp = await node.http.put(
        f"/v1/tenants/{tenant}/number-ranges", json={"ranges": ["+1*"]}, headers=admin
    )
    assert resp.status_code == 403
    await set_ranges(node, tenant, ["+1555777*", "support"])
    resp = await node.http.get(f"/v1/tenants/{tenant}/number-ranges", headers=admin)
    assert resp.json() == {"ranges": ["+1555777*", "support"]}
    resp = await node.http.get("/v1/tenants/demo/number-ranges", headers=admin)
    assert resp.status_code == 404  # another tenant's ranges are not its business
    for number in ("+15557770001", "support"):
        resp = await node.http.post(
            "/v1/numbers", json={"number": number, "agent": "front"}, headers=admin
        )
        assert resp.status_code == 201, (number, resp.text)
    for number in ("+15557780001", "support2", "+155577"):
        resp = await node.http.post(
            "/v1/numbers", json={"number": number, "agent": "front"}, headers=admin
        )
        assert resp.status_code == 403, number
    after = {n["number"] for n in (await node.http.get("/v1/numbers", headers=admin)).json()}
    assert after - before == {"+15557770001", "support"}

    # the platform admin routes any number for any tenant
    resp = await node.http.post(
        f"/v1/numbers?tenant={tenant}", json={"number": "+33123456789", "agent": "front"},
        headers=auth(),
    )  # fmt: skip
    assert resp.status_code == 201
    bad = await node.http.put(
        f"/v1/tenants/{tenant}/number-ranges", json={"ranges": ["*"]}, headers=auth()
    )
    assert bad.status_code == 400  # a range names at least one character before `*`
    missing = await node.http.put(
        "/v1/tenants/nobody/number-ranges", json={"ranges": ["+1*"]}, headers=auth()
    )
    assert missing.status_code == 404
