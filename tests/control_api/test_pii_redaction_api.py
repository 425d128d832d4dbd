"""`GET|PUT /v1/tenants/{id}/pii-redaction`: the platform admin sets which kinds of personal
data are redacted for a tenant (what a call reads when it starts: `redaction_kinds`), every
kind when unset; unknown kinds and malformed bodies are refused and change nothing; a tenant's
keys read their own policy and set nothing; another tenant's is a 404."""

from __future__ import annotations

from agents.pii import ALL_KINDS
from control_api.store.redaction import redaction_kinds
from tests.control_api.test_isolation import new_tenant
from tests.support.harness import Node, auth


def path(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/pii-redaction"


async def test_the_platform_admin_sets_a_tenants_policy(node: Node) -> None:
    tenant, keys = await new_tenant(node, "Careful")
    store = node.host.store
    resp = await node.http.get(path(tenant), headers=auth())
    assert resp.status_code == 200 and resp.json() == {"kinds": None}
    assert await redaction_kinds(store, tenant) == ALL_KINDS  # unset: every kind
    resp = await node.http.put(
        path(tenant), json={"kinds": ["email", "card", "email"]}, headers=auth()
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"kinds": ["card", "email"]}
    assert await redaction_kinds(store, tenant) == {"card", "email"}
    resp = await node.http.get(path(tenant), headers=auth(keys["viewer"]))
    assert resp.status_code == 200 and resp.json() == {"kinds": ["card", "email"]}
    # none at all, then back to every kind
    resp = await node.http.put(path(tenant), json={"kinds": []}, headers=auth())
    assert resp.status_code == 200 and resp.json() == {"kinds": []}
    assert await redaction_kinds(store, tenant) == frozenset()
    resp = await node.http.put(path(tenant), json={"kinds": None}, headers=auth())
    assert resp.status_code == 200 and resp.json() == {"kinds": None}
    assert await redaction_kinds(store, tenant) == ALL_KINDS


async def test_bad_values_are_refused_and_nothing_changes(node: Node) -> None:
    tenant, _ = await new_tenant(node, "Strict")
    ok = await node.http.put(path(tenant), json={"kinds": ["cpf"]}, headers=auth())
    assert ok.is_success, ok.text
    for body in ({"kinds": ["cpf", "iban"]}, {"kinds": "card"}, {"kinds": [1]}, {},
                 {"kinds": ["card"], "also": 1}, {"kinds": ["card"] * 33}):  # fmt: skip
        resp = await node.http.put(path(tenant), json=body, headers=auth())
        assert resp.status_code == 400, (body, resp.text)
    assert await redaction_kinds(node.host.store, tenant) == {"cpf"}
    resp = await node.http.put(path("nobody"), json={"kinds": None}, headers=auth())
    assert resp.status_code == 404
    assert (await node.http.get(path("nobody"), headers=auth())).status_code == 404


async def test_a_tenant_sets_nothing_and_sees_only_its_own(node: Node) -> None:
    tenant, keys = await new_tenant(node, "Own")
    for role in ("admin", "operator", "viewer"):
        resp = await node.http.put(path(tenant), json={"kinds": []}, headers=auth(keys[role]))
        assert resp.status_code == 403, (role, resp.text)
    assert await redaction_kinds(node.host.store, tenant) == ALL_KINDS
    resp = await node.http.get(path("demo"), headers=auth(keys["admin"]))
    assert resp.status_code == 404  # another tenant's policy is not its business
