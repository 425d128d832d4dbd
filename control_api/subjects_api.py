"""Data-subject requests (LGPD/GDPR): `GET /v1/subjects/{phone}/export` and
`DELETE /v1/subjects/{phone}`, for the acting tenant, tenant `admin` keys (and the platform
admin) only.

`phone` is the subject's number in E.164 (`+5511987654321`; a 400 naming `phone` otherwise). It
finds the calls whose caller (inbound) or callee (outbound) it is, in the forms transports store
numbers in (`store.subjects`), and the tenant's campaign contacts with that number
(`control_api.subject_rows`). Another tenant's calls are never looked at: a number with nothing
in the acting tenant is an empty export and an erasure of nothing (200, zero counts).

- The export is one JSON document: every call (its record, transcript, outcome, latency and
  every analytics event stored for it), a reference to each call's recording (`url`: the
  `GET /v1/calls/{id}/recording` route, which serves it in byte ranges and audit-logs each
  read; `format`, `size_bytes`), and the campaign contacts with their attempts. Recordings are
  links, not inline audio: a subject's calls may hold hours of audio, the route already
  streams it with ranges, and each download is audited.
- The erasure deletes, in this order: the recordings (through the `RecordingStore`: local or
  S3; a store that fails is a 503 and nothing else is erased, so the request can be repeated),
  then in one transaction the call records, their outbox events (undelivered or not), relay
  marks and dead letters, the campaign contacts, their attempts and `contact.attempted` events,
  and writes the audit record and a `subject.erased` event into the outbox, which the relay
  delivers to the Redis Stream, ClickHouse and the tenant's webhooks so downstream stores can
  follow (by `call_ids`). A call still going is a 409 naming it (its later events would bring
  it back); erase after it ends.

Both requests leave an audit record (`subject_requests`: kind, the subject's keyed reference,
key id, time, counts; never the number) and a log line with the same fields. The do-not-call
list is not touched: a number on it stays there (it is what keeps the subject from being
called).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import secrets
from collections.abc import Collection
from typing import Any, Literal

import msgspec
from litestar import Request, Router, delete, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import FromPath

from control_api.acting_tenant import TENANT_MUST_EXIST, ActingTenant
from control_api.analytics import Analytics
from control_api.analytics.events import iso
from control_api.api_errors import errors
from control_api.auth import Principal, can_manage
from control_api.calls_history_api import CallDetail, TranscriptLine, _fields
from control_api.recordings.store import FORMATS, RecordingKey, RecordingStore
from control_api.store.subjects import parse_phone, subject_ref, subject_ref_key
from control_api.subject_rows import (
    Busy,
    SubjectRows,
    audit_row,
    check_not_busy,
    erase_rows,
    erased_event,
    erased_outbox_row,
    events_of,
    find_subject,
)
from core.errors import StoreError

__all__ = ["SubjectErasure", "SubjectExport", "subjects_router"]

log = logging.getLogger(__name__)


class RecordingRef(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    """`/v1/calls/{id}/recording` (the same key; byte ranges; each read audit-logged)."""
    format: str
    size_bytes: int


class SubjectCall(CallDetail, frozen=True, kw_only=True):
    recording: RecordingRef | None = None
    events: list[dict[str, Any]] = []
    """The call's analytics events as stored (and delivered), in order."""


class ContactAttempt(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    started_at: str
    ended_at: str | None = None
    disposition: str | None = None
    call_id: str | None = None


class SubjectContact(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    campaign: str
    number: str
    variables: dict[str, str]
    timezone: str | None = None
    attempts: int
    disposition: str | None = None
    final: bool
    attempts_made: list[ContactAttempt] = []


class SubjectExport(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    """The number asked about (E.164)."""
    subject_ref: str
    """Its keyed reference (what the audit record and the `subject.erased` event carry)."""
    tenant_id: str
    request_id: str
    """The audit record's id."""
    exported_at: str
    calls: list[SubjectCall]
    campaign_contacts: list[SubjectContact]


class SubjectErasure(msgspec.Struct, frozen=True, kw_only=True):
    subject_ref: str
    tenant_id: str
    erasure_id: str
    """The audit record's id, and the `subject.erased` event's `call_id`."""
    erased_at: str
    erased: dict[str, int]
    """How many of each: calls, transcript_lines, events, dead_letters, recordings,
    campaign_contacts, campaign_attempts."""
    call_ids: list[str]


def _phone(text: str) -> str:
    try:
        return parse_phone(text)
    except ValueError as exc:
        raise ValidationException(
            f"phone: {exc}", extra=[{"message": str(exc), "key": "phone", "source": "path"}]
        ) from None


def _actor(user: Principal) -> str:
    return user.key_id or ("platform" if user.is_admin else "unknown")


def _unavailable(what: str) -> HTTPException:
    return HTTPException(
        status_code=503, detail=f"the recordings store is unreachable ({what}); try again"
    )


async def _recording(
    store: RecordingStore | None, tenant_id: str, call_id: str
) -> RecordingRef | None:
    if store is None:
        return None
    for fmt in FORMATS:
        try:
            key = RecordingKey(tenant_id, call_id, fmt)  # type: ignore[arg-type]
        except ValueError:
            return None  # not an id: never stored
        try:
            size = await store.size(key)
        except (StoreError, OSError) as exc:
            raise _unavailable("reading") from exc
        if size is not None:
            return RecordingRef(url=f"/v1/calls/{call_id}/recording", format=fmt, size_bytes=size)
    return None


async def _delete_recordings(
    store: RecordingStore | None, tenant_id: str, call_ids: Collection[str]
) -> int:
    deleted = 0
    if store is None:
        return deleted
    for call_id in call_ids:
        for fmt in FORMATS:
            try:
                key = RecordingKey(tenant_id, call_id, fmt)  # type: ignore[arg-type]
            except ValueError:
                break
            try:
                deleted += await store.delete(key)
            except (StoreError, OSError) as exc:
                raise _unavailable("deleting") from exc
    return deleted


def _when(at: datetime.datetime | None) -> str | None:
    """ISO 8601 UTC (SQLite hands back naive datetimes; the store writes UTC)."""
    if at is None:
        return None
    return iso(at if at.tzinfo is not None else at.replace(tzinfo=datetime.UTC))


def _contacts(found: SubjectRows) -> list[SubjectContact]:
    made: dict[int, list[ContactAttempt]] = {}
    for a in found.attempts:
        made.setdefault(a.contact_id, []).append(
            ContactAttempt(
                attempt=a.attempt,
                started_at=_when(a.started_at) or "",
                ended_at=_when(a.ended_at),
                disposition=a.disposition,
                call_id=a.call_id,
            )
        )
    return [
        SubjectContact(
            campaign_id=c.campaign_id,
            campaign=found.campaign_names.get(c.campaign_id, ""),
            number=c.number,
            variables=dict(c.variables),
            timezone=c.timezone,
            attempts=c.attempts,
            disposition=c.disposition,
            final=c.final,
            attempts_made=made.get(c.id, []),
        )
        for c in found.contacts
    ]


async def _export(
    analytics: Analytics, recordings: RecordingStore | None, tenant_id: str, e164: str
) -> tuple[list[SubjectCall], list[SubjectContact]]:
    async with analytics.store.session() as session:
        found = await find_subject(session, tenant_id, e164)
        events = await events_of(session, tenant_id, found.call_ids)
    calls = [
        SubjectCall(
            **_fields(row),
            slots={str(k): str(v) for k, v in (row.slots or {}).items()},
            transcript=[
                msgspec.convert(line, TranscriptLine)
                for line in (
                    row.transcript
                    if row.transcript is not None
                    else [e for e in events[row.id] if e.get("type") == "transcript.final"]
                )
            ],
            latency=row.latency,
            outcome_source=row.outcome_source,
            recording=await _recording(recordings, tenant_id, row.id),
            events=events[row.id],
        )
        for row in found.calls
    ]
    return calls, _contacts(found)


def _busy(exc: Busy) -> HTTPException:
    return HTTPException(
        status_code=409,
        detail="the subject has a call in progress; erase it after the call ends",
        extra={"call_ids": exc.call_ids, "contacts_held": exc.contacts},
    )


async def _erase(
    analytics: Analytics,
    recordings: RecordingStore | None,
    tenant_id: str,
    e164: str,
    *,
    ref: str,
    actor: str,
) -> SubjectErasure:
    erasure_id = "era_" + secrets.token_hex(16)
    async with analytics.store.session() as session:
        first = await find_subject(session, tenant_id, e164)
    try:
        check_not_busy(first, analytics.wall())
    except Busy as exc:
        raise _busy(exc) from None
    removed = await _delete_recordings(recordings, tenant_id, first.call_ids)
    at = analytics.wall()
    async with analytics.store.session() as session:
        found = await find_subject(session, tenant_id, e164)
        if not set(found.call_ids) <= set(first.call_ids):
            raise _busy(Busy(sorted(set(found.call_ids) - set(first.call_ids)), 0))
        counts = await erase_rows(session, tenant_id, found)
        counts["recordings"] = removed
        session.add(
            audit_row(
                erasure_id, tenant_id, kind="erase", ref=ref, actor=actor, at=at, counts=counts
            )
        )
        event = erased_event(
            erasure_id, tenant_id, ref=ref, call_ids=found.call_ids, at=at, counts=counts
        )
        session.add(erased_outbox_row(event, analytics.node))
    analytics.relay.wake()
    return SubjectErasure(
        subject_ref=ref,
        tenant_id=tenant_id,
        erasure_id=erasure_id,
        erased_at=iso(at),
        erased=counts,
        call_ids=found.call_ids,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Subjects:
    """What the routes work on."""

    analytics: Analytics
    recordings: RecordingStore | None
    ref_key: bytes | None


def _export_route(on: _Subjects) -> Any:
    @get(
        "/subjects/{phone:str}/export",
        guards=[can_manage],
        responses=errors(400, 503),
        opt={TENANT_MUST_EXIST: True},
        summary="Everything kept of one caller: calls, transcripts, outcomes, recordings",
    )
    async def export_subject(
        phone: FromPath[str], tenant_id: ActingTenant, request: Request[Principal, None, State]
    ) -> SubjectExport:
        e164 = _phone(phone)
        ref = subject_ref(on.ref_key, tenant_id, e164)
        calls, contacts = await _export(on.analytics, on.recordings, tenant_id, e164)
        request_id = "exp_" + secrets.token_hex(16)
        at = on.analytics.wall()
        counts = {
            "calls": len(calls),
            "recordings": sum(1 for c in calls if c.recording is not None),
            "campaign_contacts": len(contacts),
        }
        actor = _actor(request.user)
        async with on.analytics.store.session() as session:
            session.add(
                audit_row(
                    request_id, tenant_id, kind="export", ref=ref, actor=actor, at=at, counts=counts
                )
            )
        _audit_log("subject exported", tenant_id, actor, ref, request_id, counts)
        return SubjectExport(
            subject=e164,
            subject_ref=ref,
            tenant_id=tenant_id,
            request_id=request_id,
            exported_at=iso(at),
            calls=calls,
            campaign_contacts=contacts,
        )

    return export_subject


def _erase_route(on: _Subjects) -> Any:
    @delete(
        "/subjects/{phone:str}",
        status_code=200,
        guards=[can_manage],
        responses=errors(400, 409, 503),
        opt={TENANT_MUST_EXIST: True},
        summary="Erase one caller: calls, transcripts, events, recordings, campaign contacts",
    )
    async def erase_subject(
        phone: FromPath[str], tenant_id: ActingTenant, request: Request[Principal, None, State]
    ) -> SubjectErasure:
        e164 = _phone(phone)
        ref = subject_ref(on.ref_key, tenant_id, e164)
        actor = _actor(request.user)
        erasure = await _erase(on.analytics, on.recordings, tenant_id, e164, ref=ref, actor=actor)
        _audit_log("subject erased", tenant_id, actor, ref, erasure.erasure_id, erasure.erased)
        return erasure

    return erase_subject


def _audit_log(
    message: str, tenant_id: str, actor: str, ref: str, request_id: str, counts: dict[str, int]
) -> None:
    """The request's log line (as a recording read is logged): never the number."""
    log.info(
        message,
        extra={"tenant_id": tenant_id, "key_id": actor, "subject_ref": ref,
               "request_id": request_id, "counts": counts},
    )  # fmt: skip


def subjects_router(
    analytics: Analytics,
    recordings: RecordingStore | None,
    ref_key: bytes | None | Literal["settings"] = "settings",
    **router_kwargs: Any,
) -> Router:
    """The subject routes on `analytics`' store and `recordings` (None: the node keeps none).
    `ref_key` keys the subjects' references; by default the key derived from the node's
    secrets key (`store.subjects.subject_ref_key` of `analytics.settings`). The router kwargs:
    the bearer auth and the acting-tenant dependency, as for the other `/v1` routers."""
    key = subject_ref_key(analytics.settings) if ref_key == "settings" else ref_key
    on = _Subjects(analytics, recordings, key)
    return Router(path="/v1", route_handlers=[_export_route(on), _erase_route(on)], **router_kwargs)
