"""`GET /v1/calls/{call_id}/recording`: a call's recording, for its tenant, in byte ranges.

The recording is looked up under the acting tenant only (`RecordingKey(tenant_id, call_id)`):
another tenant's call is the same 404 as no call. The call id must be an id (`ID_PATTERN`); it
is never a path. The key needs the `operator` role (recordings are the callers' voices). Each
read is audit-logged (tenant, call, key id, range; never the audio).

Ranges (RFC 9110): one range `bytes=a-b`, `bytes=a-` or `bytes=-n` is answered 206 with
`Content-Range`; a range that starts past the end 416 with `Content-Range: bytes */size`; a
header that is not one byte range is ignored (the whole file, 200). The body is streamed from
the store `CHUNK_BYTES` at a time.

`POST /v1/calls/{call_id}/recording/pause` and `.../resume` (with `live`, the node's
`LiveRecordings`) mute and unmute a live call's recording from now on (a sensitive moment), for
operator and admin keys of the call's tenant; the answer says whether it is paused now and
whether the request changed that; 404 when the tenant has no live recording of that call.

`recording_router(store, live, **router_kwargs)` builds the router; the router kwargs are the
bearer auth middleware and the acting-tenant dependency, as for the other `/v1` routers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
from litestar import Request, Router, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.response import Stream

from control_api.acting_tenant import ActingTenant
from control_api.api_errors import errors
from control_api.auth import Principal, can_operate
from control_api.recordings.live import LiveRecordings
from control_api.recordings.store import FORMATS, ID_PATTERN, RecordingKey, RecordingStore

__all__ = [
    "CHUNK_BYTES",
    "RangeNotSatisfiable",
    "RecordingState",
    "byte_range",
    "recording_router",
]

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 256 * 1024
MEDIA_TYPES: Final = {"wav": "audio/wav", "ogg": "audio/ogg"}
_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")


class RecordingState(msgspec.Struct, frozen=True, kw_only=True):
    paused: bool
    changed: bool
    """False: it already was paused (or recording)."""


class RangeNotSatisfiable(ValueError):
    """A byte range that holds no byte of the file."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The `[start, end)` a `Range` header asks of a `size`-byte file; None: the whole file
    (no header, or one that is not a single byte range); `RangeNotSatisfiable` if none of it."""
    match = _RANGE.match(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable("an empty suffix range")
        return max(size - suffix, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise RangeNotSatisfiable(f"range starts at {start}, the file has {size} bytes")
    return start, end


async def _chunks(
    store: RecordingStore, key: RecordingKey, start: int, end: int
) -> AsyncIterator[bytes]:
    pos = start
    while pos < end:
        data = await store.read(key, pos, min(pos + CHUNK_BYTES, end))
        if not data:
            return
        yield data
        pos += len(data)


async def _find(store: RecordingStore, tenant_id: str, call_id: str) -> tuple[RecordingKey, int]:
    if ID_PATTERN.match(call_id):
        for fmt in FORMATS:
            key = RecordingKey(tenant_id, call_id, fmt)  # type: ignore[arg-type]
            size = await store.size(key)
            if size is not None:
                return key, size
    raise NotFoundException(f"no recording of call {call_id!r}")


def _pause_handlers(live: LiveRecordings) -> list[Any]:
    async def switch(
        pause: bool, tenant_id: str, call_id: str, request: Request[Principal, None, State]
    ) -> RecordingState:
        changed = (live.pause if pause else live.resume)(tenant_id, call_id)
        if changed is None:
            raise NotFoundException(f"no live recording of call {call_id!r}")
        log.info(
            "recording paused" if pause else "recording resumed",
            extra={"tenant_id": tenant_id, "call_id": call_id, "key_id": request.user.key_id},
        )
        return RecordingState(paused=pause, changed=changed)

    @post(
        "/calls/{call_id:str}/recording/pause",
        status_code=200,
        guards=[can_operate],
        responses=errors(404),
        summary="Mute a live call's recording from now on",
    )
    async def pause_recording(
        call_id: FromPath[str], tenant_id: ActingTenant, request: Request[Principal, None, State]
    ) -> RecordingState:
        return await switch(True, tenant_id, call_id, request)

    @post(
        "/calls/{call_id:str}/recording/resume",
        status_code=200,
        guards=[can_operate],
        responses=errors(404),
        summary="Record a live call again from now on",
    )
    async def resume_recording(
        call_id: FromPath[str], tenant_id: ActingTenant, request: Request[Principal, None, State]
    ) -> RecordingState:
        return await switch(False, tenant_id, call_id, request)

    return [pause_recording, resume_recording]


def recording_router(
    store: RecordingStore, live: LiveRecordings | None = None, **router_kwargs: Any
) -> Router:
    """The recording routes on `store` and `live` (see the module docstring)."""

    @get(
        "/calls/{call_id:str}/recording",
        guards=[can_operate],
        responses=errors(404),
        summary="A call's recording (byte ranges)",
    )
    async def get_recording(
        call_id: FromPath[str], tenant_id: ActingTenant, request: Request[Principal, None, State]
    ) -> Stream:
        key, size = await _find(store, tenant_id, call_id)
        try:
            wanted = byte_range(request.headers.get("range"), size)
        except RangeNotSatisfiable:
            raise HTTPException(
                status_code=416,
                detail="range not satisfiable",
                headers={"Content-Range": f"bytes */{size}"},
            ) from None
        start, end = wanted if wanted is not None else (0, size)
        log.info(
            "recording read",
            extra={
                "tenant_id": tenant_id,
                "call_id": call_id,
                "key_id": request.user.key_id,
                "range": f"{start}-{end - 1}",
            },
        )
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start)}
        if wanted is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        return Stream(
            _chunks(store, key, start, end),
            status_code=206 if wanted is not None else 200,
            media_type=MEDIA_TYPES[key.format],
            headers=headers,
        )

    handlers = [get_recording, *(_pause_handlers(live) if live is not None else [])]
    return Router(path="/v1", route_handlers=handlers, **router_kwargs)
