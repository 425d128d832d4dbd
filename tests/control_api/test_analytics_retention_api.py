"""`GET|PUT /v1/tenants/{id}/analytics-retention`: the platform admin sets how long a tenant's
ClickHouse analytics are kept (what `Retention` reads), within 1..3660 days or null; a tenant's
keys read their own and set nothing; another tenant's is a 404."""

from __future__ import annotations

from control_api.analytics.retention import retention_days
from tests.control_api.test_isolation import new_tenant
from tests.support.harness import Node, auth


def path(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/analytics-retention"


async def test_the_platform_admin_sets_a_tenants_retention(node: Node) -> None:
    tenant, keys = await new_tenant(node, "Retained")
    resp = await node.http.get(path(tenant), headers=auth())
    assert resp.status_code == 200 and resp.json() == {"days": None}
    resp = await node.http.put(path(tenant), json={"days": 90}, headers=auth())
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"days": 90}
    assert (await retention_days(node.host.store)).get(tenant) == 90
    # the tenant's own keys read it
    resp = await node.http.get(path(tenant), headers=auth(keys["viewer"]))
    assert resp.status_code == 200 and resp.json() == {"days": 90}
    # null: kept forever again
    resp = await node.http.put(path(tenant), json={"days": None}, headers=auth())
    assert resp.status_code == 200 and resp.json() == {"days": None}
    assert tenant not in await retention_days(node.host.store)


async def test_bad_values_are_refused_and_nothing_changes(node: Node) -> None:
    tenant, _ = await new_tenant(node, "Bounded")
    assert (await node.http.put(path(tenant), json={"days": 30}, headers=auth())).is_success
    for body in ({"days": 0}, {"days": -5}, {"days": 3661}, {"days": "ninety"}, {"days": 1.5}, {},
                 {"days": 30, "months": 1}):  # fmt: skip
        resp = await node.http.put(path(tenant), json=body, headers=auth())
        assert resp.status_code == 400, (body, resp.text)
    assert (await retention_days(node.host.store)).get(tenant) == 30
    for days in (1, 3660):
        resp = await node.http.put(path(tenant), json={"days": days}, headers=auth())
        assert resp.status_code == 200 and resp.json() == {"days": days}
    resp = await node.http.put(path("nobody"), json={"days": 30}, headers=auth())
    assert resp.status_code == 404


async def test_a_tenant_sets_nothing_and_sees_only_its_own(node: Node) -> None:
    tenant, keys = await new_tenant(node, "Own")
    for role in ("admin", "operator", "viewer"):
        resp = await node.http.put(path(tenant), json={"days": 1}, headers=auth(keys[role]))
        assert resp.status_code == 403, (role, resp.text)
    assert tenant not in await retention_days(node.host.store)
    resp = await node.http.get(path("demo"), headers=auth(keys["admin"]))
    assert resp.status_code == 404  # another tenant's setting is not its business
