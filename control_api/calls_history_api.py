"""Calls history: `GET /v1/calls` (the tenant's live and past calls, newest first, filtered by
agent, time and outcome, paginated) and `GET /v1/calls/{id}` (one call with its transcript,
latency summary and outcome).

Pages: `limit` (at most `MAX_PAGE_SIZE`), and `cursor` — the `next_cursor` of the previous
page (absent on the last one). Calls are ordered by start time, then id, so a page never
repeats or skips a call while new calls come in.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Request, Router, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    NotFoundException,
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy import and_, or_, select

from control_api.acting_tenant import ActingTenant, tenant_dependency
from control_api.analytics import Analytics
from control_api.analytics.outbox import transcript_of
from control_api.analytics.tables import CallRow
from control_api.api_errors import errors
from control_api.auth import Principal

MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 50

AnalyticsDep = NamedDependency[Analytics]
Disposition = Literal["completed", "transferred", "abandoned", "no_input", "failed"]


class Sentiment(msgspec.Struct, frozen=True):
    label: str
    score: float


class CallSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant_id: str
    agent: str
    agent_version: int | None
    direction: str
    transport: str
    from_uri: str
    to_uri: str
    status: Literal["live", "ended"]
    started_at: str
    ended_at: str | None = None
    end_reason: str | None = None
    duration_s: float | None = None
    disposition: str | None = None
    summary: str | None = None
    sentiment: Sentiment | None = None


class TranscriptLine(msgspec.Struct, frozen=True, kw_only=True):
    role: str
    text: str
    turn: int
    interrupted: bool = False
    at: str | None = None
    redacted: list[str] = []
    """The kinds of personal data replaced by placeholders in `text` (`[CARD]`, `[EMAIL]`, ...);
    the text was redacted before it was stored."""


class CallDetail(CallSummary, frozen=True, kw_only=True):
    slots: dict[str, str] = {}
    transcript: list[TranscriptLine] = []
    latency: dict[str, Any] | None = None
    """Per-turn latency summary: turns, voice-to-voice p50/p95/max (ms), median TurnMarks."""
    outcome_source: str | None = None


class CallPage(msgspec.Struct, frozen=True):
    calls: list[CallSummary]
    next_cursor: str | None = None


def _iso(at: datetime.datetime | None) -> str | None:
    return at.astimezone(datetime.UTC).isoformat() if at is not None else None


def _fields(row: CallRow) -> dict[str, Any]:
    sentiment = None
    if row.sentiment is not None:
        sentiment = Sentiment(row.sentiment, row.sentiment_score or 0.0)
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "agent": row.agent,
        "agent_version": row.agent_version,
        "direction": row.direction,
        "transport": row.transport,
        "from_uri": row.from_uri,
        "to_uri": row.to_uri,
        "status": "live" if row.ended_at is None else "ended",
        "started_at": _iso(row.started_at) or "",
        "ended_at": _iso(row.ended_at),
        "end_reason": row.end_reason,
        "duration_s": row.duration_s,
        "disposition": row.disposition,
        "summary": row.summary,
        "sentiment": sentiment,
    }


def _encode_cursor(row: CallRow) -> str:
    raw = json.dumps([row.started_at.astimezone(datetime.UTC).isoformat(), row.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, call_id = json.loads(raw)
        when = datetime.datetime.fromisoformat(at)
        if not isinstance(call_id, str) or when.tzinfo is None:
            raise ValueError("bad cursor")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValidationException("malformed cursor") from exc
    return when, call_id


def _utc(at: datetime.datetime) -> datetime.datetime:
    return at.replace(tzinfo=datetime.UTC) if at.tzinfo is None else at


@get("/calls", responses=errors(400), summary="List calls (live and past)")
async def list_calls(
    analytics: AnalyticsDep,
    tenant_id: ActingTenant,
    agent: FromQuery[str | None] = None,
    disposition: FromQuery[Disposition | None] = None,
    status: FromQuery[Literal["live", "ended"] | None] = None,
    since: FromQuery[datetime.datetime | None] = None,
    until: FromQuery[datetime.datetime | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        QueryParameter(description="The `next_cursor` of the page before (opaque; 400 if not)"),
    ] = None,
) -> CallPage:
    """Newest first. `since`/`until` bound the start time (ISO 8601; UTC when no offset)."""
    stmt = select(CallRow).where(CallRow.tenant_id == tenant_id)
    if agent is not None:
        stmt = stmt.where(CallRow.agent == agent)
    if disposition is not None:
        stmt = stmt.where(CallRow.disposition == disposition)
    if status == "live":
        stmt = stmt.where(CallRow.ended_at.is_(None))
    elif status == "ended":
        stmt = stmt.where(CallRow.ended_at.is_not(None))
    if since is not None:
        stmt = stmt.where(CallRow.started_at >= _utc(since))
    if until is not None:
        stmt = stmt.where(CallRow.started_at < _utc(until))
    if cursor is not None:
        at, call_id = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(CallRow.started_at < at, and_(CallRow.started_at == at, CallRow.id < call_id))
        )
    stmt = stmt.order_by(CallRow.started_at.desc(), CallRow.id.desc()).limit(limit + 1)
    async with analytics.store.session() as session:
        rows = list((await session.scalars(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return CallPage(
        calls=[CallSummary(**_fields(r)) for r in rows],
        next_cursor=_encode_cursor(rows[-1]) if more and rows else None,
    )


@get(
    "/calls/{call_id:str}", responses=errors(404), summary="One call: transcript, latency, outcome"
)
async def get_call(
    call_id: FromPath[str], request: Request[Principal, None, State], analytics: AnalyticsDep
) -> CallDetail:
    async with analytics.store.session() as session:
        row = await session.get(CallRow, call_id)
        if row is None or not request.user.may_act_for(row.tenant_id):
            raise NotFoundException(f"no call {call_id!r}")
        lines = (
            row.transcript if row.transcript is not None else await transcript_of(session, call_id)
        )
    return CallDetail(
        **_fields(row),
        slots={str(k): str(v) for k, v in (row.slots or {}).items()},
        transcript=[msgspec.convert(line, TranscriptLine) for line in lines],
        latency=row.latency,
        outcome_source=row.outcome_source,
    )


def calls_history_router(
    analytics: Analytics, *, extra_handlers: Sequence[HTTPRouteHandler] = (), **kwargs: Any
) -> Router:
    """The history routes, plus `extra_handlers` on the same paths (e.g. the hang-up)."""

    def provide() -> Analytics:
        return analytics

    kwargs.setdefault("tags", ["calls"])
    return Router(
        path="/v1",
        route_handlers=[list_calls, get_call, *extra_handlers],
        dependencies={
            "analytics": Provide(provide, use_cache=True, sync_to_thread=False),
            **tenant_dependency(analytics.store),
        },
        **kwargs,
    )
