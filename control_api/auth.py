"""Who is calling the API: `Authorization: Bearer KEY` resolved to a `Principal`.

For now the only key is the platform admin's (`http.admin_key` / VOICENODE_ADMIN_KEY), which
may act for any tenant. Tenant API keys will be added to `KeyRing.principal_for`, the one place
that turns a key into a principal. Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from typing import Final

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

DEFAULT_TENANT: Final = "demo"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller: the platform admin (`tenant_id` None) or one tenant."""

    tenant_id: str | None = None

    @property
    def is_admin(self) -> bool:
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


class KeyRing:
    """Turns API keys into principals."""

    def __init__(self, admin_key: str) -> None:
        self._admin_key = admin_key.encode()

    def principal_for(self, key: str) -> Principal | None:
        if self._admin_key and hmac.compare_digest(key.encode(), self._admin_key):
            return Principal()
        return None


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
        principal = self._keys.principal_for(token)
        if principal is None:
            raise NotAuthorizedException("unknown key", headers=_CHALLENGE)
        return AuthenticationResult(user=principal, auth=None)
