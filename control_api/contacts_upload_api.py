"""`POST /v1/campaigns/{id}/contacts`: contacts added to a draft campaign from a CSV file (the
request body, `Content-Type: text/csv`), for the acting tenant (`operator` or `admin`).

The file's first row names the columns: `number` (E.164; typed forms such as
`+1 (415) 555-0100` are normalised), an optional `timezone` (an IANA zone), and any others,
each a template variable of the contact. What `control_api.campaigns.contacts_csv` reads and
`control_api.campaigns.imports` stores; here the per-contact dial-plan check and the answers:

- 200 with `imported`, the campaign's `contacts` after it, `do_not_call` (the lines imported
  but ended as do_not_call: the tenant's do-not-call list has them, so they are never dialled)
  and `rejected` (per refused row: its line and why: a malformed row, a bad number or time
  zone, a number the file repeats or the campaign already has, a number outside the tenant's
  dial plan). The other rows are imported.
- 400 when the file as a whole is unusable (no header or no `number` column, a bad column
  name, not UTF-8, broken quoting) or holds no rows; 413 above `MAX_CSV_BYTES`, above
  `MAX_ROWS` rows, or when the campaign would pass `model.MAX_CONTACTS`; 404 no such campaign (or
  another tenant's); 409 the campaign is no longer a draft. Nothing is imported on any of
  these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import msgspec
from litestar import post
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath, RawBody

from control_api.acting_tenant import ActingTenant
from control_api.api_errors import errors
from control_api.auth import can_operate
from control_api.campaigns import queries
from control_api.campaigns.contacts_csv import (
    MAX_CSV_BYTES,
    MAX_ROWS,
    CsvContact,
    CsvInvalid,
    CsvTooLarge,
    RowProblem,
    parse_contacts,
)
from control_api.campaigns.imports import NotADraft, import_contacts
from control_api.state import Api
from media.dialplan import DestinationInvalid, DestinationRefused, DialGuard

log = logging.getLogger(__name__)

CSV_DESCRIPTION: Final = (
    "CSV, UTF-8. A header row: `number`, optionally `timezone`, and any other columns "
    "(each a template variable). Delimiter `,`, `;` or tab (the header's). "
    f"At most {MAX_ROWS} rows and {MAX_CSV_BYTES} bytes."
)


@dataclass
class CsvUpload(Operation):
    """The route's operation in the API document: its body is the CSV file (the handler
    reads it raw, which Litestar's document would otherwise leave out)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
            description=CSV_DESCRIPTION,
            required=True,
        )


class RejectedRow(msgspec.Struct, frozen=True):
    line: int
    """The row's line in the file (the header is line 1)."""
    reason: str


class ContactsUploaded(msgspec.Struct, frozen=True, kw_only=True):
    imported: int
    """Rows added as contacts (those in `do_not_call` included)."""
    contacts: int
    """The campaign's contacts after the upload."""
    do_not_call: list[int]
    """Lines imported but ended as do_not_call (on the tenant's do-not-call list)."""
    rejected: list[RejectedRow]
    """Rows not imported, in line order."""


def _in_plan(
    guard: DialGuard, tenant_id: str, rows: list[CsvContact]
) -> tuple[list[CsvContact], list[RowProblem]]:
    allowed, refused = [], []
    for row in rows:
        try:
            guard.check(tenant_id, row.contact.number)
        except (DestinationInvalid, DestinationRefused) as exc:
            refused.append(RowProblem(row.line, f"outside the dial plan: {exc}"))
        else:
            allowed.append(row)
    return allowed, refused


@post(
    "/campaigns/{campaign_id:str}/contacts",
    status_code=200,
    guards=[can_operate],
    request_max_body_size=MAX_CSV_BYTES,
    operation_class=CsvUpload,
    responses=errors(400, 404, 409, 413),
    summary="Add contacts to a draft campaign from a CSV file",
)
async def upload_contacts(
    campaign_id: FromPath[str],
    api: Api,
    tenant_id: ActingTenant,
    body: RawBody,
) -> ContactsUploaded:
    """Malformed rows are reported per line and the rest imported."""
    async with api.store.session() as session:  # an unknown campaign is a 404, whatever the file
        if await queries.get_campaign(session, tenant_id, campaign_id) is None:
            raise NotFoundException(f"no campaign {campaign_id!r}")
    try:
        parsed = parse_contacts(body)
    except CsvTooLarge as exc:
        raise HTTPException(str(exc), status_code=413) from None
    except CsvInvalid as exc:
        raise ValidationException(f"contacts: {exc}") from None
    if not parsed.contacts and not parsed.problems:
        raise ValidationException("contacts: the file has a header but no rows")
    allowed, refused = _in_plan(api.calls.dialplan, tenant_id, parsed.contacts)
    try:
        async with api.store.session() as session:
            result = await import_contacts(session, tenant_id, campaign_id, allowed)
    except NotADraft as exc:
        raise HTTPException(str(exc), status_code=409) from None
    except CsvTooLarge as exc:
        raise HTTPException(str(exc), status_code=413) from None
    if result is None:
        raise NotFoundException(f"no campaign {campaign_id!r}")
    rejected = sorted([*parsed.problems, *refused, *result.problems], key=lambda p: p.line)
    log.info(
        "campaign contacts uploaded",
        extra={
            "tenant_id": tenant_id,
            "campaign_id": campaign_id,
            "imported": result.imported,
            "do_not_call": len(result.do_not_call),
            "rejected": len(rejected),
        },
    )
    return ContactsUploaded(
        imported=result.imported,
        contacts=result.contacts,
        do_not_call=result.do_not_call,
        rejected=[RejectedRow(p.line, p.reason) for p in rejected],
    )
