"""Tenants, keys and roles over HTTP: tenant isolation (another tenant's ids answer 404), what
each role may do, and revoked keys refused at once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.control_api.test_store import spec
from tests.support.harness import Node, auth

TenantKeys = dict[str, str]
"""role -> key"""


async def new_tenant(node: Node, name: str) -> tuple[str, TenantKeys]:
    """A tenant with one key per role, an agent `front` and a number routed to it."""
    resp = await node.http.post("/v1/tenants", json={"name": name}, headers=auth())
    assert resp.status_code == 201, resp.text
    tenant = resp.json()
    assert tenant["name"] == name and tenant["id"]
    keys: TenantKeys = {}
    for role in ("admin", "operator", "viewer"):
        resp = await node.http.post(
            "/v1/keys", json={"tenant": tenant["id"], "role": role}, headers=auth()
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["role"] == role and resp.json()["key"].startswith("vn_")
        keys[role] = resp.json()["key"]
    admin = auth(keys["admin"])
    resp = await node.http.post("/v1/agents", json={"toml": spec("front")}, headers=admin)
    assert resp.status_code == 201, resp.text
    number = f"+1555{len(name):03d}{sum(map(ord, name)) % 10000:04d}"
    resp = await node.http.put(  # the platform admin lets the tenant route it
        f"/v1/tenants/{tenant['id']}/number-ranges", json={"ranges": [number]}, headers=auth()
    )
    assert resp.status_code == 200, resp.text
    resp = await node.http.post(
        "/v1/numbers", json={"number": number, "agent": "front"}, headers=admin
    )
    assert resp.status_code == 201, resp.text
    return tenant["id"], keys


async def ids_of(node: Node, tenant_keys: TenantKeys) -> dict[str, str]:
    admin = auth(tenant_keys["admin"])
    keys = (await node.http.get("/v1/keys", headers=admin)).json()
    numbers = (await node.http.get("/v1/numbers", headers=admin)).json()
    return {"key": keys[0]["id"], "number": numbers[0]["number"], "agent": "front"}


def b_routes(b_tenant: str, b: dict[str, str]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every route that names a tenant-owned id, aimed at tenant B's ids."""
    agent, number, key = b["agent"], b["number"], b["key"]
    return [
        ("GET", f"/v1/tenants/{b_tenant}", None),
        ("GET", f"/v1/agents/{agent}", None),
        ("PUT", f"/v1/agents/{agent}", {"toml": spec(agent)}),
        ("GET", f"/v1/agents/{agent}/versions", None),
        ("POST", f"/v1/agents/{agent}/rollback", {"version": 1}),
        ("DELETE", f"/v1/agents/{agent}", None),
        ("DELETE", f"/v1/numbers/{number}", None),
        ("DELETE", f"/v1/keys/{key}", None),
    ]


async def test_another_tenants_ids_answer_404(node: Node) -> None:
    a_tenant, a_keys = await new_tenant(node, "Tenant A")
    b_tenant, b_keys = await new_tenant(node, "Tenant B")
    b = await ids_of(node, b_keys)
    # B's agent is also named `front`: A's key must reach A's, so delete A's first
    a_admin = auth(a_keys["admin"])
    for number in (await node.http.get("/v1/numbers", headers=a_admin)).json():
        await node.http.delete(f"/v1/numbers/{number['number']}", headers=a_admin)
    assert (await node.http.delete("/v1/agents/front", headers=a_admin)).status_code == 204
    for method, path, body in b_routes(b_tenant, b):
        resp = await node.http.request(method, path, json=body, headers=a_admin)
        assert resp.status_code == 404, (method, path, resp.text)
    # lists show only the own tenant's rows
    assert (await node.http.get("/v1/agents", headers=a_admin)).json() == []
    assert (await node.http.get("/v1/numbers", headers=a_admin)).json() == []
    keys = (await node.http.get("/v1/keys", headers=a_admin)).json()
    assert {k["tenant"] for k in keys} == {a_tenant} and len(keys) == 3
    # naming B explicitly is refused; B's rows are all still there
    for path in ("/v1/agents", "/v1/numbers", "/v1/keys"):
        resp = await node.http.get(path, params={"tenant": b_tenant}, headers=a_admin)
        assert resp.status_code == 403, path
    b_admin = auth(b_keys["admin"])
    assert (await node.http.get("/v1/agents/front", headers=b_admin)).json()["version"] == 1
    assert len((await node.http.get("/v1/numbers", headers=b_admin)).json()) == 1
    assert (await node.http.get("/v1/agents", headers=b_admin)).status_code == 200
    # the platform admin reaches B with ?tenant=
    resp = await node.http.get("/v1/agents/front", params={"tenant": b_tenant}, headers=auth())
    assert resp.status_code == 200
    resp = await node.http.get("/v1/agents", params={"tenant": "nobody"}, headers=auth())
    assert resp.status_code == 404


async def test_a_tenant_key_cannot_call_another_tenants_agent(node: Node) -> None:
    _, a_keys = await new_tenant(node, "Caller A")
    resp = await node.http.post(
        "/v1/webrtc/offer",
        json={"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer"},
        headers=auth(a_keys["operator"]),
    )
    assert resp.status_code == 404  # demo's receptionist is not A's
    resp = await node.http.post(
        "/v1/webrtc/offer",
        json={"agent": "front", "sdp": "v=0\r\n", "type": "offer", "tenant": "demo"},
        headers=auth(a_keys["operator"]),
    )
    assert resp.status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_roles_below_admin_cannot_change_configuration(node: Node, role: str) -> None:
    tenant, keys = await new_tenant(node, f"Roles {role}")
    ids = await ids_of(node, keys)
    headers = auth(keys[role])
    for method, path in [("GET", "/v1/agents"), ("GET", "/v1/agents/front"),
                         ("GET", "/v1/agents/front/versions"), ("GET", "/v1/numbers"),
                         ("GET", f"/v1/tenants/{tenant}")]:  # fmt: skip
        resp = await node.http.request(method, path, headers=headers)
        assert resp.status_code == 200, (role, path, resp.text)
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/agents", {"toml": spec("other")}),
        ("PUT", "/v1/agents/front", {"toml": spec("front")}),
        ("POST", "/v1/agents/front/rollback", {"version": 1}),
        ("DELETE", "/v1/agents/front", None),
        ("POST", "/v1/numbers", {"number": "5550001", "agent": "front"}),
        ("DELETE", f"/v1/numbers/{ids['number']}", None),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"role": "admin"}),
        ("DELETE", f"/v1/keys/{ids['key']}", None),
        ("POST", "/v1/tenants", {"name": "mine"}),
        ("GET", "/v1/tenants", None),
        ("PUT", f"/v1/tenants/{tenant}/quotas", {"calls_per_minute": 1000}),
        ("PUT", f"/v1/tenants/{tenant}/number-ranges", {"ranges": ["+1*"]}),
    ]
    for method, path, body in writes:
        resp = await node.http.request(method, path, json=body, headers=headers)
        assert resp.status_code == 403, (role, method, path, resp.text)
    # nothing changed
    agent = (await node.http.get("/v1/agents/front", headers=headers)).json()
    assert agent["version"] == 1


async def test_viewer_cannot_place_or_hang_up_calls(node: Node) -> None:
    _, keys = await new_tenant(node, "Viewer calls")
    body = {"agent": "front", "sdp": "v=0\r\n", "type": "offer"}
    resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth(keys["viewer"]))
    assert resp.status_code == 403
    assert (await node.http.delete("/v1/calls/x", headers=auth(keys["viewer"]))).status_code == 403
    # an operator gets past the role check (to the SDP check)
    resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth(keys["operator"]))
    assert resp.status_code == 400
    assert (
        await node.http.delete("/v1/calls/x", headers=auth(keys["operator"]))
    ).status_code == 404


async def test_tenant_admin_manages_its_keys_and_revocation_is_immediate(node: Node) -> None:
    tenant, keys = await new_tenant(node, "Keys")
    admin = auth(keys["admin"])
    resp = await node.http.post("/v1/keys", json={"role": "viewer"}, headers=admin)
    assert resp.status_code == 201
    made = resp.json()
    assert made["tenant"] == tenant
    viewer = auth(made["key"])
    assert (await node.http.get("/v1/agents", headers=viewer)).status_code == 200
    listed = (await node.http.get("/v1/keys", headers=admin)).json()
    assert made["id"] in {k["id"] for k in listed}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert made["key"] not in str(listed)
    assert (await node.http.delete(f"/v1/keys/{made['id']}", headers=admin)).status_code == 204
    resp = await node.http.get("/v1/agents", headers=viewer)
    assert resp.status_code == 401
    assert made["key"] not in resp.text
    revoked = [
        k for k in (await node.http.get("/v1/keys", headers=admin)).json() if k["revoked_at"]
    ]
    assert [k["id"] for k in revoked] == [made["id"]]
    # the platform admin revokes by id without naming the tenant
    op = keys["operator"]
    op_id = next(k["id"] for k in listed if k["role"] == "operator")
    assert (await node.http.delete(f"/v1/keys/{op_id}", headers=auth())).status_code == 204
    assert (await node.http.get("/v1/numbers", headers=auth(op))).status_code == 401
    # a tenant admin may not create keys for another tenant
    resp = await node.http.post("/v1/keys", json={"role": "admin", "tenant": "demo"}, headers=admin)
    assert resp.status_code == 403


async def test_tenants_are_platform_admin_only_and_names_unique(node: Node) -> None:
    resp = await node.http.post("/v1/tenants", json={"name": "Unique"}, headers=auth())
    assert resp.status_code == 201
    tenant = resp.json()
    resp = await node.http.post("/v1/tenants", json={"name": "Unique"}, headers=auth())
    assert resp.status_code == 409 and "name" in resp.json()["detail"]
    listed = (await node.http.get("/v1/tenants", headers=auth())).json()
    assert {t["id"] for t in listed} >= {"demo", tenant["id"]}
    resp = await node.http.put(
        f"/v1/tenants/{tenant['id']}/quotas",
        json={"max_concurrent_calls": 2, "calls_per_minute": 10},
        headers=auth(),
    )
    assert resp.status_code == 200
    assert (resp.json()["max_concurrent_calls"], resp.json()["calls_per_minute"]) == (2, 10)
    resp = await node.http.put(
        "/v1/tenants/nobody/quotas", json={"calls_per_minute": 1}, headers=auth()
    )
    assert resp.status_code == 404
    resp = await node.http.post("/v1/tenants", json={"name": ""}, headers=auth())
    assert resp.status_code == 400 and "name" in resp.text
