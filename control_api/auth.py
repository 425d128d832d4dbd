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
The platform admin may also create tenants and set their quotas and number ranges.
`KeyRing.principal_for` is the one place that turns a key into a principal; a revoked key is
refused at once (no cache). Keys are never logged.

A phone token (`vnp_...`, printed by `voicenode serve` in the /phone link) is not a key: it is
accepted on `POST /v1/webrtc/offer` only, as an `operator` of the `demo` tenant, until it expires.
A source address that presents too many wrong keys is refused with 429 for a while
(`auth_limits.FailedAuth`), whatever key it presents then.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from control_api.auth_limits import FailedAuth
from control_api.store import Store
from control_api.store.tenants import principal_key
from media.clock import Clock, MonotonicClock

if TYPE_CHECKING:
    from control_api.phone import PhoneTokens

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


PHONE_ROUTE: Final = ("POST", "/v1/webrtc/offer")
"""The one request a phone token may make."""


class KeyRing:
    """Turns API keys into principals: the configured platform admin key, or a stored tenant
    key that is not revoked; phone tokens (on `PHONE_ROUTE` only); and keeps the failed-auth
    count per source address."""

    def __init__(
        self,
        admin_key: str,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        limiter: FailedAuth | None = None,
        phone: PhoneTokens | None = None,
    ) -> None:
        self._admin_key = admin_key.encode()
        self._store = store
        self._clock = clock or MonotonicClock()
        self._limiter = limiter
        self._phone = phone

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

    def phone_principal(self, token: str) -> Principal | None:
        """An unexpired phone token: an `operator` of the demo tenant (for `PHONE_ROUTE`)."""
        if self._phone is None or not self._phone.valid(token, self._clock.now()):
            return None
        return Principal(tenant_id=DEFAULT_TENANT, role="operator", key_id="phone")

    def retry_after(self, source: str) -> int | None:
        """Seconds `source` must wait after too many wrong keys; None: it may try."""
        if self._limiter is None:
            return None
        return self._limiter.retry_after(source, self._clock.now())

    def failed(self, source: str) -> None:
        """`source` presented a wrong key."""
        if self._limiter is not None:
            self._limiter.failed(source, self._clock.now())


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
        source = source_of(connection)
        refuse_if_limited(self._keys, source)
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise NotAuthorizedException("missing bearer key", headers=_CHALLENGE)
        principal = await self._keys.principal_for(token)
        if principal is None:
            principal = self._keys.phone_principal(token)
            if (
                principal is not None
                and (
                    connection.scope.get("method"),
                    connection.scope["path"],
                )
                != PHONE_ROUTE
            ):
                raise PermissionDeniedException("a phone token may only place a WebRTC call")
        if principal is None:
            self._keys.failed(source)
            raise NotAuthorizedException("unknown key", headers=_CHALLENGE)
        return AuthenticationResult(user=principal, auth=None)


def source_of(connection: ASGIConnection) -> str:  # type: ignore[type-arg]
    """The peer's address (what failed-auth limits count by)."""
    client = connection.client
    return client.host if client is not None else "unknown"


def refuse_if_limited(keys: KeyRing, source: str) -> None:
    """429 with Retry-After when `source` presented too many wrong keys lately."""
    wait = keys.retry_after(source)
    if wait is not None:
        raise TooManyRequestsException(
            "too many failed authentications from this address; retry later",
            headers={"Retry-After": str(wait)},
        )


def token_guard(token: str, keys: KeyRing) -> Callable[..., None]:
    """A guard requiring `Authorization: Bearer <token>` (no guard when `token` is empty):
    `/metrics` and the OpenAPI schema behind `http.metrics_token`."""
    expected = token.encode()

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        if not expected:
            return
        source = source_of(connection)
        refuse_if_limited(keys, source)
        given = bearer_token(connection.headers.get("authorization"))
        if given is None or not hmac.compare_digest(given.encode(), expected):
            if given is not None:
                keys.failed(source)
            raise NotAuthorizedException("missing or wrong bearer token", headers=_CHALLENGE)

    return guard


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
