"""The acting-tenant dependency (`control_api.acting_tenant`) on its own: a small app whose routes
answer the tenant they were given, behind the real bearer auth and a real migrated store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from control_api.acting_tenant import (
    TENANT_IN_BODY,
    TENANT_MUST_EXIST,
    ActingTenant,
    resolve_tenant,
    tenant_dependency,
)
from control_api.auth import BearerAuth, Principal
from control_api.store import Store
from control_api.store import tenants as tenant_rows
from tests.support.analytics import ACME, ADMIN, KEYS, VIEWER, bearer
from tests.support.host import temp_store

REFUSED = "this key cannot act for another tenant"


@get("/any")
async def any_tenant(tenant_id: ActingTenant) -> str:
    return tenant_id


@get("/known", opt={TENANT_MUST_EXIST: True})
async def known_tenant(tenant_id: ActingTenant) -> str:
    return tenant_id


@post("/body", status_code=200, opt={TENANT_IN_BODY: True})
async def body_tenant(data: JSONBody[dict[str, Any]], tenant_id: ActingTenant) -> str:
    return tenant_id


@post("/plain-body", status_code=200)
async def plain_body(data: JSONBody[dict[str, Any]], tenant_id: ActingTenant) -> str:
    return tenant_id


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with temp_store() as store:
        async with store.session() as session:
            await tenant_rows.create_tenant(session, "Acme", tenant_id="acme")
        yield store


@pytest.fixture
async def client(store: Store) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = Litestar(
        route_handlers=[any_tenant, known_tenant, body_tenant, plain_body],
        middleware=[DefineMiddleware(BearerAuth, keys=KEYS)],
        dependencies=tenant_dependency(store),
        logging_config=None,
    )
    async with AsyncTestClient(app) as client:
        yield client


async def answer(client: AsyncTestClient[Litestar], key: str, path: str, **kw: Any) -> Any:
    method = client.post if "json" in kw else client.get
    resp = await method(path, headers=bearer(key), **kw)
    return resp.text if resp.status_code == 200 else (resp.status_code, resp.json()["detail"])


async def test_the_platform_admin_acts_for_the_tenant_it_names(
    client: AsyncTestClient[Litestar],
) -> None:
    assert await answer(client, ADMIN, "/known?tenant=acme") == "acme"
    assert await answer(client, ADMIN, "/known") == "demo"  # names none: the default tenant
    assert await answer(client, ADMIN, "/any?tenant=acme") == "acme"


async def test_an_unknown_tenant_is_404_only_where_the_route_asks(
    client: AsyncTestClient[Litestar],
) -> None:
    assert await answer(client, ADMIN, "/known?tenant=ghost") == (404, "tenant: no tenant 'ghost'")
    assert await answer(client, ADMIN, "/any?tenant=ghost") == "ghost"


async def test_a_tenant_key_acts_for_its_own_tenant(client: AsyncTestClient[Litestar]) -> None:
    for key in (ACME, VIEWER):
        assert await answer(client, key, "/known") == "acme"
        assert await answer(client, key, "/known?tenant=acme") == "acme"
        assert await answer(client, key, "/any") == "acme"


async def test_a_tenant_key_naming_another_tenant_is_refused(
    client: AsyncTestClient[Litestar],
) -> None:
    # the refusal the routes gave before the dependency: 403, the same words, known tenant or not
    for path in ("/known?tenant=demo", "/known?tenant=ghost", "/any?tenant=demo"):
        assert await answer(client, ACME, path) == (403, REFUSED)
    assert await answer(client, ACME, "/body", json={"tenant": "demo"}) == (403, REFUSED)


async def test_the_body_names_the_tenant_where_the_route_says_so(
    client: AsyncTestClient[Litestar],
) -> None:
    assert await answer(client, ADMIN, "/body?tenant=ghost", json={"tenant": "acme"}) == "acme"
    assert await answer(client, ADMIN, "/body?tenant=acme", json={"agent": "x"}) == "acme"
    assert await answer(client, ADMIN, "/body", json={"tenant": 5}) == "demo"  # not a name
    assert await answer(client, ACME, "/body", json={"tenant": "acme"}) == "acme"
    # elsewhere a body's `tenant` is the route's business, not the acting tenant
    assert await answer(client, ADMIN, "/plain-body", json={"tenant": "acme"}) == "demo"
    assert await answer(client, ACME, "/plain-body", json={"tenant": "demo"}) == "acme"


async def test_resolve_tenant_without_http(store: Store) -> None:
    admin, acme = Principal(), Principal(tenant_id="acme", role="viewer")
    assert await resolve_tenant(admin, "acme", store) == "acme"
    assert await resolve_tenant(admin, None, store) == "demo"
    assert await resolve_tenant(admin, "ghost", None) == "ghost"
    assert await resolve_tenant(acme, None, store) == "acme"
    with pytest.raises(NotFoundException, match="tenant: no tenant 'ghost'"):
        await resolve_tenant(admin, "ghost", store)
    with pytest.raises(PermissionDeniedException, match=REFUSED):
        await resolve_tenant(acme, "demo", store)
