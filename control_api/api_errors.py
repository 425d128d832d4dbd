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

Headers: every 401 carries `WWW-Authenticate` (the bearer key, the token guard), every 429
`Retry-After` (failed keys, the dial plan's and tenants' call rates); a route whose 503 may
carry `Retry-After` (a refused call: the node full, loading or draining) says so with
`errors(..., 503, retry_after=[503])`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, Schema
from litestar.openapi.spec.enums import OpenAPIType


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


@dataclass
class ErrorSpec(ResponseSpec):
    """An `ApiError` answer of a route's own; `retry_after`: it may carry `Retry-After`."""

    retry_after: bool = False


def errors(*codes: int, retry_after: Collection[int] = ()) -> dict[int, ResponseSpec]:
    """A route's `responses=` for the errors it raises itself (each an `ApiError`);
    `retry_after`: the codes (besides 429, which always has it) that may send `Retry-After`."""
    return {
        code: ErrorSpec(
            data_container=ApiError,
            description=WHY[code],
            generate_examples=False,
            retry_after=code in retry_after,
        )
        for code in codes
    }


CHALLENGE = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING),
    description='`Bearer realm="voicenode"`: present a key as `Authorization: Bearer <key>`',
    required=True,
)
RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before trying again",
    required=True,
)


def error_headers(code: int, retry_after: bool = False) -> dict[str, OpenAPIHeader]:
    """The headers an error answer `code` carries: `WWW-Authenticate` on every 401,
    `Retry-After` on every 429 and (not always: `required` false) where `retry_after`."""
    if code == 401:
        return {"WWW-Authenticate": CHALLENGE}
    if code == 429:
        return {"Retry-After": RETRY_AFTER}
    if retry_after:
        return {
            "Retry-After": OpenAPIHeader(
                schema=RETRY_AFTER.schema,
                required=False,
                description=f"{RETRY_AFTER.description} (when it is worth trying again)",
            )
        }
    return {}
