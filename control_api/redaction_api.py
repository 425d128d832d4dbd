"""`GET|PUT /v1/tenants/{id}/pii-redaction {"kinds": ["card", "email", ...]}`: which kinds of
personal data (`agents.pii`) are replaced by placeholders in the tenant's transcripts, analytics
events (so its webhooks and the Redis Stream), call history, live feed and its LLM agents' view
of the caller; null (the default): every kind, `[]`: none. PUT: the platform admin only; GET:
also the tenant's own keys. A call reads the policy when it starts.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from agents.pii import PiiKind
from control_api.api_errors import errors
from control_api.auth import Principal, platform_only
from control_api.state import Api
from control_api.store.redaction import set_policy
from control_api.tenants_api import store_errors, tenant_session

log = logging.getLogger(__name__)


class PiiRedaction(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The kinds of personal data redacted for the tenant (`card`, `cpf`, `cnpj`, `cep`, `ssn`,
    `account`, `email`, `phone`, `address`, `dob`); null: every kind."""

    kinds: Annotated[list[PiiKind], Meta(max_length=32)] | None


@get(
    "/tenants/{tenant_id:str}/pii-redaction",
    responses=errors(404),
    summary="The kinds of personal data redacted for a tenant",
)
async def show_pii_redaction(
    tenant_id: FromPath[str], request: Request[Principal, None, State], api: Api
) -> PiiRedaction:
    async with tenant_session(api, tenant_id, request.user) as (_, row):
        return msgspec.convert({"kinds": row.pii_redaction}, PiiRedaction)


@put(
    "/tenants/{tenant_id:str}/pii-redaction",
    guards=[platform_only],
    responses=errors(404),
    summary="Set the kinds of personal data redacted for a tenant",
)
async def put_pii_redaction(
    tenant_id: FromPath[str], data: JSONBody[PiiRedaction], api: Api
) -> PiiRedaction:
    async with tenant_session(api, tenant_id) as (_, row):
        set_policy(row, data.kinds)
        stored = row.pii_redaction
    log.info(
        "tenant pii redaction set",
        extra={"tenant_id": tenant_id, "kinds": "all" if stored is None else ",".join(stored)},
    )
    return msgspec.convert({"kinds": stored}, PiiRedaction)


def redaction_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[show_pii_redaction, put_pii_redaction],
        exception_handlers=store_errors(),
        **kwargs,
    )
