"""The tenant's do-not-call list over HTTP (issue 17), for the acting tenant only: no campaign
of the tenant dials a number on it (the dialler ends such a contact as `do_not_call`).

- `POST /v1/dnc {"numbers": [{"number", "reason"?}, ...]}` adds up to `MAX_BATCH` numbers:
  each is normalised to E.164 (`+1 (415) 555-0100` and `0044 20...` are taken; a national
  number without its country code is refused), and the answer reports every entry (`added`,
  `already_listed` or `invalid` with why) while the valid ones are added (`operator`).
- `PUT /v1/dnc/{number} {"reason"?}` adds one number (`operator`); a number already listed
  keeps its first entry.
- `GET /v1/dnc?limit=&cursor=` pages the list in number order (any key).
- `GET /v1/dnc/{number}` checks one number: `listed`, and when and why it was added (any key).
- `DELETE /v1/dnc/{number}` takes a number off (`admin`: it lets campaigns call it again).

A number in a path is E.164 (`%2B14155550100`, or a literal `+`). The numbers are personal
data: the node logs counts, never numbers, and no error message repeats one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Router, delete, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, Parameter, QueryParameter
from msgspec import Meta

from control_api.acting_tenant import TENANT_MUST_EXIST, ActingTenant
from control_api.api_errors import errors
from control_api.auth import can_manage, can_operate
from control_api.campaigns import dnc
from control_api.state import Api
from control_api.tenants_api import store_errors, utc

log = logging.getLogger(__name__)

MAX_BATCH: Final = 1000
E164_PATTERN: Final = r"^\+[1-9][0-9]{1,14}$"
MAX_PAGE_SIZE: Final = 500
DEFAULT_PAGE_SIZE: Final = 100
Typed = Annotated[str, Meta(min_length=1, max_length=64, description="A number, E.164 or typed")]
Reason = Annotated[str, Meta(max_length=dnc.MAX_REASON)]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="The `next_cursor` of the page before (the last number's digits)",
        pattern=r"^[1-9][0-9]{1,14}$",
    ),
]
PathNumber = Annotated[
    str,
    Parameter(
        description="The number, E.164 (`+` URL-encoded as `%2B` where a client needs it)",
        pattern=E164_PATTERN,
    ),
]


class DncEntryIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    number: Typed
    reason: Reason | None = None


class DncBatchIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    numbers: Annotated[tuple[DncEntryIn, ...], Meta(min_length=1, max_length=MAX_BATCH)]


class DncReasonIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Reason | None = None


NO_REASON: Final = DncReasonIn()


class DncEntry(msgspec.Struct, frozen=True):
    number: str
    """E.164."""
    added_at: datetime
    reason: str | None

    @classmethod
    def of(cls, row: dnc.DncRow) -> DncEntry:
        return cls(number=row.number, added_at=utc(row.added_at), reason=row.reason)


class DncResult(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    """The entry's place in `numbers`, from 0."""
    status: Literal["added", "already_listed", "invalid"]
    number: str | None = None
    """The number as listed (E.164); none when `invalid`."""
    message: str | None = None
    """Why an `invalid` entry was refused."""


class DncBatchOut(msgspec.Struct, frozen=True, kw_only=True):
    added: int
    already_listed: int
    invalid: int
    results: list[DncResult]
    """One per entry, in the order given."""


class DncPage(msgspec.Struct, frozen=True):
    numbers: list[DncEntry]
    next_cursor: str | None = None


class DncCheck(msgspec.Struct, frozen=True, kw_only=True):
    number: str
    listed: bool
    added_at: datetime | None = None
    reason: str | None = None


def _results(numbers: list[str | None], new: list[bool]) -> list[DncResult]:
    results, fresh = [], iter(new)
    for index, number in enumerate(numbers):
        if number is None:
            message = "not an E.164 number: + (or 00), country code and digits, 2 to 15"
            results.append(DncResult(index=index, status="invalid", message=message))
        else:
            status: Literal["added", "already_listed"] = (
                "added" if next(fresh) else "already_listed"
            )
            results.append(DncResult(index=index, status=status, number=number))
    return results


def _normalised(typed: str) -> str | None:
    try:
        return dnc.normalise(typed)
    except ValueError:
        return None


@post(
    "/dnc",
    status_code=200,
    guards=[can_operate],
    summary="Add numbers to the do-not-call list",
)
async def add_numbers(data: JSONBody[DncBatchIn], api: Api, tenant_id: ActingTenant) -> DncBatchOut:
    """Every valid entry is added, whatever the others; `results` says per entry."""
    numbers = [_normalised(entry.number) for entry in data.numbers]
    valid = [
        (number, entry.reason)
        for number, entry in zip(numbers, data.numbers, strict=True)
        if number is not None
    ]
    new: list[bool] = []
    if valid:
        async with api.store.session() as session:
            new = await dnc.add(session, tenant_id, valid, datetime.now(UTC))
    results = _results(numbers, new)
    counts = {s: sum(r.status == s for r in results) for s in ("added", "already_listed")}
    out = DncBatchOut(
        added=counts["added"],
        already_listed=counts["already_listed"],
        invalid=len(results) - len(valid),
        results=results,
    )
    log.info(
        "do-not-call numbers added",
        extra={"tenant_id": tenant_id, "added": out.added, "invalid": out.invalid},
    )
    return out


@put(
    "/dnc/{number:str}",
    status_code=200,
    guards=[can_operate],
    responses=errors(400),
    summary="Add one number to the do-not-call list",
)
async def put_number(
    number: PathNumber,
    api: Api,
    tenant_id: ActingTenant,
    data: JSONBody[DncReasonIn] = NO_REASON,
) -> DncEntry:
    """A number already listed keeps its first entry (its time and reason)."""
    async with api.store.session() as session:
        (new,) = await dnc.add(session, tenant_id, [(number, data.reason)], datetime.now(UTC))
        row = await dnc.get(session, tenant_id, number)
    assert row is not None
    if new:
        log.info("do-not-call numbers added", extra={"tenant_id": tenant_id, "added": 1})
    return DncEntry.of(row)


def _after(cursor: str | None) -> str | None:
    return "+" + cursor if cursor is not None else None


@get("/dnc", responses=errors(400), summary="List the do-not-call list")
async def list_numbers(
    api: Api, tenant_id: ActingTenant, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> DncPage:
    """In number order."""
    after = _after(cursor)
    async with api.store.session() as session:
        found = await dnc.page(session, tenant_id, limit=limit + 1, after=after)
    page = found[:limit]
    return DncPage(
        numbers=[DncEntry.of(row) for row in page],
        next_cursor=page[-1].number.removeprefix("+") if len(found) > limit else None,
    )


@get("/dnc/{number:str}", responses=errors(400), summary="Is a number on the do-not-call list")
async def check_number(number: PathNumber, api: Api, tenant_id: ActingTenant) -> DncCheck:
    async with api.store.session() as session:
        row = await dnc.get(session, tenant_id, number)
    if row is None:
        return DncCheck(number=number, listed=False)
    return DncCheck(number=number, listed=True, added_at=utc(row.added_at), reason=row.reason)


@delete(
    "/dnc/{number:str}",
    guards=[can_manage],
    responses=errors(400, 404),
    summary="Take a number off the do-not-call list",
)
async def remove_number(number: PathNumber, api: Api, tenant_id: ActingTenant) -> None:
    async with api.store.session() as session:
        if not await dnc.remove(session, tenant_id, number):
            raise NotFoundException("number: not on the do-not-call list")
    log.info("do-not-call number removed", extra={"tenant_id": tenant_id})


def dnc_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[add_numbers, put_number, list_numbers, check_number, remove_number],
        exception_handlers=store_errors(),
        opt={TENANT_MUST_EXIST: True},
        **kwargs,
    )
