"""The API's error body, and how a route says which errors it answers.

Every error the API answers has one body, `ApiError`: Litestar's exception handler renders an
`HTTPException` (and anything raised as one: guards, the bearer middleware, validation) as
`{"status_code", "detail", "extra"?}` — `extra` only where there is more, e.g. the fields a
validation failed on — and the store's errors are rendered the same way
(`tenants_api.store_errors`). The OpenAPI document describes it once, as the `ApiError`
component (`control_api.openapi_doc`).

A route declares the errors of its own making with `responses=errors(404, 409)`; what the
layers around it answer (the bearer key, guards, the acting tenant, body and parameter
validation) is added per route when the app is assembled (`openapi_doc.document`).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class ApiError(msgspec.Struct, frozen=True, kw_only=True):
    """An error answer."""

    status_code: int
    """The HTTP status, again."""
    detail: str
    """What went wrong, for a person (names the field where a field is at fault)."""
    extra: dict[str, Any] | list[Any] | msgspec.UnsetType = msgspec.UNSET
    """More, where there is more: a validation failure lists `{"message", "key", "source"}`
    per field."""


WHY: Final[dict[int, str]] = {
    400: "Malformed request: a parameter or the body is not valid (`detail`/`extra` say which)",
    401: "Missing, unknown or revoked key (`WWW-Authenticate: Bearer`)",
    403: "The key may not do this: its role, another tenant, or a phone token off its route",
    404: "Not found (or not this key's tenant's)",
    409: "Conflicts with the current state (a name or number taken, a concurrent change)",
    413: "The body is larger than `http.max_body_bytes`",
    422: "Understood but refused (nothing changed)",
    429: "Too many requests: failed keys from this address, or a tenant limit (`Retry-After`)",
    502: "The far end or the PBX refused the call",
    503: "Not available on this node now (not configured, full, loading or draining)",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """A route's `responses=` for the errors it raises itself (each an `ApiError`)."""
    return {
        code: ResponseSpec(data_container=ApiError, description=WHY[code], generate_examples=False)
        for code in codes
    }
