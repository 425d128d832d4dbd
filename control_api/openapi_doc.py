"""The OpenAPI document made true per route, when the app is assembled (`document(app, ...)`).

Litestar documents a route's success answer and the errors the route declares; this step adds,
for every route, what the layers around it answer, and describes request bodies as the
validator sees them:

- errors, each as the `ApiError` component (`control_api.api_errors`) with the headers it
  carries (`WWW-Authenticate` on 401, `Retry-After` on 429 and a refused call's 503): the
  route's own (`responses=errors(...)` or `raises=`), plus 401/403/429 behind the bearer key,
  401/429 behind a token guard (when a token is set), 403 behind a role guard, 400/403 (and
  404 where the tenant must exist) from the acting-tenant dependency, 400/413 with a body, 400
  with query or header parameters;
- request bodies as msgspec's JSON Schema of the body's Struct (`msgspec.json.schema_components`):
  the very types, patterns, lengths and bounds the body is decoded with; types a field only
  names (`Meta(extra_json_schema=...)`, e.g. the agent spec) are passed as `components`; a
  rule across fields that no field's type says (e.g. "exactly one of `spec` and `toml`") is a
  body Struct's `schema_extra` ClassVar, merged into its component.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, Final, cast

import msgspec
from litestar import Litestar
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from litestar.routes import HTTPRoute

from control_api.acting_tenant import TENANT_MUST_EXIST
from control_api.api_errors import WHY, ApiError, ErrorSpec, error_headers

REF: Final = "#/components/schemas/{name}"


def _any(_: type) -> dict[str, Any]:
    """`object` fields (free JSON, e.g. a tool's parameter schema): any value."""
    return {"description": "any JSON value"}


def components(types: Iterable[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """msgspec's schemas of `types` (refs to the OpenAPI components) and the components, each
    Struct's `schema_extra` (a rule across its fields) merged into its own."""
    types = list(types)
    refs, defs = msgspec.json.schema_components(types, schema_hook=_any, ref_template=REF)
    for t in types:
        extra = getattr(t, "schema_extra", None)
        if isinstance(extra, dict) and t.__name__ in defs:
            defs[t.__name__] = {**defs[t.__name__], **extra}
    return list(refs), defs


class Layers(msgspec.Struct, frozen=True, kw_only=True):
    """What answers before a route does: the bearer middleware's class, the guards that check
    a token (401/429) and the guards that check a role (403)."""

    bearer: type
    token_guards: Collection[Callable[..., Any]] = ()
    role_guards: Collection[Callable[..., Any]] = ()

    def errors(self, handler: HTTPRouteHandler, operation: Operation) -> set[int]:
        codes: set[int] = set()
        middleware = [getattr(m, "middleware", m) for m in handler.resolve_middleware()]
        if self.bearer in middleware:
            codes |= {401, 403, 429}
        guards = handler.resolve_guards()
        if any(g in self.token_guards for g in guards):
            codes |= {401, 429}
        if any(g in self.role_guards for g in guards):
            codes.add(403)
        params = handler.parsed_fn_signature.parameters
        if "tenant_id" in params and "tenant_id" in handler.resolve_dependencies():
            codes |= {400, 403}
            if handler.opt.get(TENANT_MUST_EXIST):
                codes.add(404)
        if "data" in params:
            codes |= {400, 413}
        if any(
            isinstance(p, Parameter) and p.param_in != ParamType.PATH
            for p in operation.parameters or []
        ):
            codes.add(400)
        return codes


def _declared(handler: HTTPRouteHandler) -> tuple[set[int], set[int], set[int]]:
    """The error codes the route declares itself, the codes of its other documented
    answers (e.g. a 503 with a health body), and its codes that may send `Retry-After`."""
    errors = {exc.status_code for exc in handler.raises or [] if hasattr(exc, "status_code")}
    others: set[int] = set()
    retry: set[int] = set()
    for code, spec in (handler.responses or {}).items():
        (errors if spec.data_container is ApiError else others).add(code)
        if isinstance(spec, ErrorSpec) and spec.retry_after:
            retry.add(code)
    return errors, others, retry


def _error_response(code: int, retry_after: bool) -> OpenAPIResponse:
    ref = Reference(ref=REF.format(name="ApiError"))
    return OpenAPIResponse(
        description=WHY.get(code, "Error"),
        headers=dict(error_headers(code, retry_after)) or None,
        content={"application/json": OpenAPIMediaType(schema=ref)},
    )


def _body_type(handler: HTTPRouteHandler) -> type | None:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    annotation = data.annotation
    return annotation if isinstance(annotation, type) else None


def _operations(app: Litestar, openapi: OpenAPI) -> Iterable[tuple[HTTPRouteHandler, Operation]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or openapi.paths is None:
            continue
        item = openapi.paths.get(route.path_format or "/")
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if isinstance(operation, Operation):
                    yield handler, operation


def document(app: Litestar, layers: Layers, extra: Iterable[type] = ()) -> None:
    """Complete `app`'s OpenAPI document (built now, served as built)."""
    openapi = app.openapi_schema
    bodies: list[tuple[Operation, type]] = []
    for handler, operation in _operations(app, openapi):
        own, others, retry = _declared(handler)
        codes = own | layers.errors(handler, operation)
        responses = {
            k: v for k, v in (operation.responses or {}).items() if int(k) < 400 or int(k) in others
        }
        responses.update({str(c): _error_response(c, c in retry) for c in sorted(codes)})
        operation.responses = dict(sorted(responses.items()))
        body = _body_type(handler)
        if body is not None and operation.request_body is not None:
            bodies.append((operation, body))
    refs, defs = components([ApiError, *(body for _, body in bodies), *extra])
    for (operation, _), ref in zip(bodies, refs[1:], strict=False):
        operation.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=cast(Schema, ref))},
            required=True,
        )
    schemas = openapi.components.schemas if openapi.components else None
    if schemas is not None:
        schemas.update(cast(dict[str, Schema], defs))
