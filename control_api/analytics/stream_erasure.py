"""Erasures in the node's own Redis Stream: a `subject.erased` or `tenant.deleted` event, once
it is in the stream, deletes (XDEL) the entries the stream still holds of what was erased.

The store forgets a subject's calls (or a tenant) when the request is made; the stream is the
node's copy of the same events for its consumers, and would otherwise keep them until
`stream_maxlen` trims them (or for ever, without a `maxlen`). The erasure events themselves
stay: they are how consumers learn to delete what they hold. A consumer that already read an
entry keeps its copy; that is its own store to erase.

Entries are matched on the fields `RedisStreamSink` writes (`tenant_id`, `call_id`, `id`), read
a page at a time, so a long stream is scanned without holding it in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Final, Protocol

import msgspec

from control_api.analytics.events import SubjectErasedEvent, TenantDeletedEvent, decode_event
from control_api.analytics.tables import OutboxRow

ERASURE_TYPES: Final = frozenset({"subject.erased", "tenant.deleted"})
PAGE: Final = 500


class StreamClient(Protocol):
    """What is used of `redis.asyncio.Redis` (bytes replies)."""

    def xrange(
        self, name: str, min: str = "-", max: str = "+", count: int | None = None
    ) -> Awaitable[Any]: ...

    def xdel(self, name: str, *ids: bytes) -> Awaitable[Any]: ...


class Erasure(msgspec.Struct, frozen=True):
    """What one erasure event removes from the stream: every entry of `tenant_id` (with
    `call_ids` None) or those of `call_ids`; never the erasure events in `keep`."""

    tenant_id: str
    call_ids: frozenset[str] | None
    keep: frozenset[str]

    def matches(self, fields: dict[bytes, bytes]) -> bool:
        if fields.get(b"tenant_id", b"").decode() != self.tenant_id:
            return False
        if fields.get(b"id", b"").decode() in self.keep:
            return False
        return self.call_ids is None or fields.get(b"call_id", b"").decode() in self.call_ids


def erasures(rows: Iterable[OutboxRow]) -> list[Erasure]:
    """The erasures a batch carries (rows that do not decode as one are not erasures here: the
    stream takes them as they are, like every other row)."""
    rows = [r for r in rows if r.type in ERASURE_TYPES]
    keep = frozenset(r.event_id for r in rows)
    found: list[Erasure] = []
    for row in rows:
        try:
            event = decode_event(row.payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if isinstance(event, SubjectErasedEvent):
            found.append(Erasure(event.tenant_id, frozenset(event.call_ids), keep))
        elif isinstance(event, TenantDeletedEvent):
            found.append(Erasure(event.tenant_id, None, keep))
    return found


async def erase_in_stream(client: StreamClient, stream: str, found: Sequence[Erasure]) -> int:
    """Deletes the entries of `stream` that any of `found` matches; returns how many. Safe to
    repeat: a second pass finds nothing left to delete."""
    if not found:
        return 0
    deleted = 0
    start = "-"
    while True:
        page: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(
            stream, min=start, max="+", count=PAGE
        )
        doomed = [eid for eid, fields in page if any(e.matches(fields) for e in found)]
        if doomed:
            deleted += int(await client.xdel(stream, *doomed))
        if len(page) < PAGE:
            return deleted
        start = "(" + page[-1][0].decode()  # exclusive: after the last entry read
