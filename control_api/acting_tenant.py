"""The acting tenant: which tenant a request acts for, resolved by one dependency.

A tenant-scoped route takes a parameter `tenant_id: ActingTenant`; its router carries the
dependency (`tenant_dependency(store)`, a `dependencies=` mapping). The rule is
`Principal.tenant_for`: a tenant key acts for its own tenant and may not name another (403 "this
key cannot act for another tenant"); the platform admin key names one with `?tenant=` and acts
for `demo` when it names none. What differs between routes is said in the route's (or its
router's) Litestar `opt`:

- `TENANT_IN_BODY`: the JSON body's `tenant` field names the tenant (it wins over `?tenant=`);
  the routes whose body has a `tenant` field (placing a call, a WebRTC offer, creating a key or
  a webhook).
- `TENANT_MUST_EXIST`: a tenant the platform admin names must exist (404 "tenant: no tenant
  'x'"); the configuration routes (agents, numbers, secrets, keys but the revocation).

The dependency is resolved before the handler's body is validated, so a request that names a
tenant it may not act for is refused (403/404) even when its body is also malformed.

The WebSocket `WS /v1/events` authenticates inside its handler, after the upgrade, so it applies
the same rule (`Principal.tenant_for`) there and answers with a close code instead.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from control_api.auth import Principal
from control_api.store import Store
from control_api.tenants_api import TenantQuery, tenant_or_404

TENANT_IN_BODY: Final = "tenant_in_body"
"""`opt` key: the request body's `tenant` field names the acting tenant."""
TENANT_MUST_EXIST: Final = "tenant_must_exist"
"""`opt` key: a tenant the platform admin names must exist (else 404)."""

ActingTenant = NamedDependency[str]
"""A handler parameter `tenant_id: ActingTenant` receives the id of the tenant it acts for."""


async def resolve_tenant(user: Principal, requested: str | None, store: Store | None) -> str:
    """The tenant `user` acts for when it names `requested` (None: names none): 403 when a
    tenant key names another; with a `store`, 404 when the platform admin names an unknown
    one."""
    tenant_id = user.tenant_for(requested)
    if user.is_admin and store is not None:
        async with store.session() as session:
            await tenant_or_404(session, tenant_id, field="tenant")
    return tenant_id


def _named_in(body: Any) -> str | None:
    """The body's `tenant`, when it is a string (anything else fails the body's validation)."""
    named = body.get("tenant") if isinstance(body, dict) else None
    return named if isinstance(named, str) else None


def tenant_dependency(store: Store) -> dict[str, Provide]:
    """The `tenant_id` dependency for a router's `dependencies=`; `store` answers whether a
    named tenant exists (on `TENANT_MUST_EXIST` routes)."""

    async def acting_tenant(
        request: Request[Principal, None, State], tenant: TenantQuery = None
    ) -> str:
        opt = request.route_handler.opt
        if opt.get(TENANT_IN_BODY):
            tenant = _named_in(await request.json()) or tenant
        return await resolve_tenant(
            request.user, tenant, store if opt.get(TENANT_MUST_EXIST) else None
        )

    return {"tenant_id": Provide(acting_tenant)}
