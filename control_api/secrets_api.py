"""Tenant secrets: `POST /v1/secrets {"name", "value"}`, `GET /v1/secrets` (names only),
`DELETE /v1/secrets/{name}`. Every route needs the `admin` role.

Secrets are write-only: a value is sealed with the node's key (`store.secrets_key`, see
`control_api.store.crypto`) and never returned or logged. An LLM agent names one as its key
(`[llm] api_key_secret = "openai"`); posting an existing name replaces its value.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Router, delete, get, post
from litestar.exceptions import (
    NotFoundException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from control_api.acting_tenant import TENANT_MUST_EXIST, ActingTenant
from control_api.api_errors import errors
from control_api.auth import can_manage
from control_api.state import Api, ApiState
from control_api.store import secrets as secret_rows
from control_api.store.crypto import SecretBox
from control_api.tenants_api import utc

log = logging.getLogger(__name__)

SECRET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SecretName = Annotated[str, Meta(pattern=SECRET_NAME_PATTERN)]
MAX_SECRETS_PER_TENANT = 100


class SecretIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: SecretName
    value: Annotated[str, Meta(min_length=1, max_length=4096)]


class SecretOut(msgspec.Struct, frozen=True):
    """A secret's name and dates; never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


class SecretList(msgspec.Struct, frozen=True):
    secrets: list[SecretOut]


def _box(api: ApiState) -> SecretBox:
    try:
        return secret_rows.box_of(api.store)
    except secret_rows.SecretsUnavailable as exc:
        raise ServiceUnavailableException(
            "tenant secrets are off on this node: it has no secrets key (store.secrets_key)"
        ) from exc


@post("/secrets", status_code=201, responses=errors(503), summary="Store a secret (write-only)")
async def put_secret(
    data: JSONBody[SecretIn],
    api: Api,
    tenant_id: ActingTenant,
) -> SecretOut:
    """Seal `value` under `name` (replacing an older value). The value is never shown again."""
    box = _box(api)
    async with api.store.session() as session:
        if len(await secret_rows.list_secrets(session, tenant_id)) >= MAX_SECRETS_PER_TENANT:
            if not await secret_rows.has_secret(session, tenant_id, data.name):
                raise ValidationException(f"at most {MAX_SECRETS_PER_TENANT} secrets per tenant")
        row, created = await secret_rows.put_secret(session, box, tenant_id, data.name, data.value)
        out = SecretOut(row.name, utc(row.created_at), utc(row.updated_at))
    log.info(
        "tenant secret stored",
        extra={"tenant_id": tenant_id, "secret": data.name, "replaced": not created},
    )
    return out


@get("/secrets", summary="The tenant's secrets (names only)")
async def list_secrets(api: Api, tenant_id: ActingTenant) -> SecretList:
    async with api.store.session() as session:
        rows = await secret_rows.list_secrets(session, tenant_id)
        return SecretList([SecretOut(r.name, utc(r.created_at), utc(r.updated_at)) for r in rows])


@delete("/secrets/{name:str}", responses=errors(404), summary="Delete a secret")
async def delete_secret(
    name: FromPath[str],
    api: Api,
    tenant_id: ActingTenant,
) -> None:
    """Agents naming it get no key from then on (their calls get the endpoint's 401)."""
    async with api.store.session() as session:
        if not await secret_rows.delete_secret(session, tenant_id, name):
            raise NotFoundException(f"no secret {name!r}")
    log.info("tenant secret deleted", extra={"tenant_id": tenant_id, "secret": name})


def secrets_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[put_secret, list_secrets, delete_secret],
        guards=[can_manage],
        opt={TENANT_MUST_EXIST: True},
        **kwargs,
    )
