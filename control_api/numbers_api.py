"""Numbers of a tenant: a DID (`+15551234567`) or SIP user (`1000`, `support`) answered by one of
its agents. A number is unique across the fleet: taking one already in use (by any tenant)
answers 409. A tenant's key may route only numbers within its tenant's ranges
(`PUT /v1/tenants/{id}/number-ranges`, platform admin; `number_ranges`), else 403 (checked
before the 409, so a tenant cannot probe other tenants' numbers); the platform admin key may
route any number for any tenant.

`GET|POST /v1/numbers {"number", "agent"}`, `DELETE /v1/numbers/{number}`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from agents.spec import Name as AgentName
from control_api.acting_tenant import TENANT_MUST_EXIST, ActingTenant
from control_api.api_errors import errors
from control_api.auth import Principal, can_manage
from control_api.number_ranges import ranges_of, within
from control_api.state import Api
from control_api.store import numbers as number_rows
from control_api.store.models import Number
from control_api.tenants_api import store_errors, utc

log = logging.getLogger(__name__)

DialString = Annotated[str, Meta(pattern=r"^[A-Za-z0-9+._~-]{1,64}$")]


class NumberIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    number: DialString
    agent: AgentName


class NumberOut(msgspec.Struct, frozen=True):
    number: str
    agent: str
    created_at: datetime

    @classmethod
    def of(cls, row: Number) -> NumberOut:
        return cls(number=row.number, agent=row.agent, created_at=utc(row.created_at))


@get("/numbers", summary="List numbers")
async def list_numbers(api: Api, tenant_id: ActingTenant) -> list[NumberOut]:
    async with api.store.session() as session:
        return [NumberOut.of(row) for row in await number_rows.list_numbers(session, tenant_id)]


@post(
    "/numbers",
    guards=[can_manage],
    responses=errors(404, 409),
    summary="Route a number to an agent",
)
async def add_number(
    data: JSONBody[NumberIn],
    request: Request[Principal, None, State],
    api: Api,
    tenant_id: ActingTenant,
) -> NumberOut:
    async with api.store.session() as session:
        if not request.user.is_admin and not within(
            data.number, await ranges_of(session, tenant_id)
        ):
            log.warning(
                "number refused: outside the tenant's ranges", extra={"tenant_id": tenant_id}
            )
            raise PermissionDeniedException(
                "number: outside this tenant's number ranges (the platform admin assigns them)"
            )
        row = await number_rows.add_number(session, tenant_id, data.number, data.agent)
    log.info("number added", extra={"tenant_id": tenant_id, "agent": data.agent})
    return NumberOut.of(row)


@delete(
    "/numbers/{number:str}", guards=[can_manage], responses=errors(404), summary="Release a number"
)
async def delete_number(
    number: FromPath[str],
    api: Api,
    tenant_id: ActingTenant,
) -> None:
    async with api.store.session() as session:
        if not await number_rows.delete_number(session, tenant_id, number):
            raise NotFoundException(f"no number {number!r}")
    log.info("number released", extra={"tenant_id": tenant_id})


def numbers_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[list_numbers, add_number, delete_number],
        exception_handlers=store_errors(),
        opt={TENANT_MUST_EXIST: True},
        **kwargs,
    )
