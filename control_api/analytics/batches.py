"""Batch sinks (the Redis Stream, ClickHouse): the relay hands each one the outbox rows above
its marks, oldest first, as one batch.

A batch sink either takes the batch (returning the rows it refused, with the reason: those go
to the dead letters and the rest counts as delivered) or raises `DeliveryError` (unreachable:
the whole batch is retried after a backoff, never dropped). A `Lane` is one sink's delivery
state in the relay: its batch size, its backoff, and how long a small batch may wait to grow
(`flush_after_s`, on the relay's clock).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from control_api.analytics.tables import DeadLetterRow, OutboxRow


class Refusal(NamedTuple):
    """A row a sink will never take (a bad value); `reason` is safe to store."""

    row: OutboxRow
    reason: str


class BatchSink(Protocol):
    key: str

    async def send_batch(self, rows: Sequence[OutboxRow]) -> Sequence[Refusal] | None: ...


@dataclasses.dataclass(slots=True)
class Lane:
    sink: BatchSink
    batch_size: int
    backoff_s: float
    backoff_max_s: float
    flush_after_s: float = 0.0
    failures: int = 0
    retry_at: float = 0.0
    hold_until: float | None = None
    """A small batch waits until then (relay clock) to grow."""
    waiting_since: float | None = None

    @property
    def key(self) -> str:
        return self.sink.key

    def due(self) -> float | None:
        """When the relay should look again for this sink (None: when woken)."""
        return self.retry_at if self.failures else self.hold_until

    def hold(self, rows: Sequence[OutboxRow], now: float, stopping: bool) -> bool:
        """True when `rows` should wait to grow: a batch under `batch_size` waits up to
        `flush_after_s` from when the relay first saw rows pending (never while stopping)."""
        small = len(rows) < self.batch_size and self.flush_after_s > 0 and not stopping
        if small and self.waiting_since is None:
            self.waiting_since = now
        if small and self.waiting_since is not None:
            until = self.waiting_since + self.flush_after_s
            if now < until:
                self.hold_until = until
                return True
        self.hold_until = self.waiting_since = None
        return False


def dead_letters(
    sink: str, refused: Sequence[Refusal], at: datetime.datetime
) -> list[DeadLetterRow]:
    return [
        DeadLetterRow(
            sink=sink,
            event_id=r.row.event_id,
            call_id=r.row.call_id,
            tenant_id=r.row.tenant_id,
            seq=r.row.seq,
            type=r.row.type,
            attempts=1,
            error=r.reason[:256],
            created_at=at,
        )
        for r in refused
    ]
