"""Who is calling the API: `Authorization: Bearer KEY` resolved to a `Principal`, and what it may
do (roles).

Two kinds of key: the platform admin key (`http.admin_key` / VOICENODE_ADMIN_KEY, never stored,
compared in constant time), which acts for any tenant, and tenant API keys (`vn_...`, stored as
SHA-256 only), each with one role:

| role       | may                                                                  |
| ---------- | -------------------------------------------------------------------- |
| `viewer`   | read its tenant's agents, numbers, calls                             |
| `operator` | that, plus place, hang up and transfer calls                         |
| `admin`    | everything in its tenant: keys, agents, numbers, webhooks            |
The platform admin may also create tenants and set their quotas. `KeyRing.principal_for` is the
one place that turns a key into a principal; a revoked key is refused at once (no cache). Keys
are never logged.
"""

from __future__ import annotations

import hmac
from typing import Final, Literal

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from control_api.store import Store
from control_api.store.tenants import principal_key

DEFAULT_TENANT: Final = "demo"

Role = Literal["admin", "operator", "viewer"]
_RANK: Final[dict[str, int]] = {"viewer": 0, "operator": 1, "admin": 2}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller: the platform admin (`tenant_id` None) or one tenant's key."""

    tenant_id: str | None = None
    role: Role = "admin"
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """True for the platform admin key (not a tenant's `admin` key)."""
        return self.tenant_id is None

    def tenant_for(self, requested: str | None) -> str:
        """The tenant a request acts for: the admin may name any (default `demo`), a tenant
        key implies its own."""
        if self.tenant_id is None:
            return requested or DEFAULT_TENANT
        if requested is not None and requested != self.tenant_id:
            raise PermissionDeniedException("this key cannot act for another tenant")
        return self.tenant_id

    def may_act_for(self, tenant_id: str) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id

    def has_role(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]


class KeyRing:
    """Turns API keys into principals: the configured platform admin key, or a stored tenant
    key that is not revoked."""

    def __init__(self, admin_key: str, store: Store | None = None) -> None:
        self._admin_key = admin_key.encode()
        self._store = store

    def __deepcopy__(self, memo: dict[int, object]) -> KeyRing:
        return self  # one ring shared by every router (Litestar deep-copies routers)

    async def principal_for(self, key: str) -> Principal | None:
        if self._admin_key and hmac.compare_digest(key.encode(), self._admin_key):
            return Principal()
        if self._store is None:
            return None
        async with self._store.session() as session:
            found = await principal_key(session, key)
        if found is None:
            return None
        return Principal(tenant_id=found.tenant_id, role=found.role, key_id=found.id)  # type: ignore[arg-type]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="voicenode"'}


class BearerAuth(AbstractAuthenticationMiddleware):
    """Requires a known bearer key; the principal becomes `request.user`."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        super().__init__(app)
        self._keys = keys

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise NotAuthorizedException("missing bearer key", headers=_CHALLENGE)
        principal = await self._keys.principal_for(token)
        if principal is None:
            raise NotAuthorizedException("unknown key", headers=_CHALLENGE)
        return AuthenticationResult(user=principal, auth=None)


# ---- guards (Litestar `guards=[...]` on a route or router) ----


def _principal(connection: ASGIConnection) -> Principal:  # type: ignore[type-arg]
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("missing bearer key", headers=_CHALLENGE)
    return user


def can_operate(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """Place, hang up and transfer calls: `operator` or `admin`."""
    if not _principal(connection).has_role("operator"):
        raise PermissionDeniedException("this key's role may not control calls (needs operator)")


def can_manage(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """Change the tenant's configuration (keys, agents, numbers, webhooks): `admin`."""
    if not _principal(connection).has_role("admin"):
        raise PermissionDeniedException(
            "this key's role may not change configuration (needs admin)"
        )


def platform_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """Tenants and their quotas: the platform admin key only."""
    if not _principal(connection).is_admin:
        raise PermissionDeniedException("only the platform admin key may manage tenants")
