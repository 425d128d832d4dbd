"""The live feed behind `WS /v1/events`: every subscriber gets its tenant's messages (JSON text)
as they happen — best effort, not the outbox (a consumer that must not miss events reads the
Redis Stream or a webhook).

Messages: the analytics events (`call.started`, `transcript.final`, `tool.called`,
`call.transferred`, `call.ended`), plus live-only `call.state` (`state`),
`transcript.partial` (`role`, `text`, `turn`) and `turn.metrics` (`turn`, `voice_to_voice_ms`,
`marks`), each with `type`, `call_id` and `tenant_id`.

Each subscriber has a bounded queue (`SUBSCRIBER_QUEUE` messages, about a minute of a busy
tenant's events); one that falls that far behind is marked `overflowed` and is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import msgspec

from control_api.analytics.events import AnalyticsEvent, encode_event
from media.call import CallInfo
from pipeline.events import CallEvent, StateChanged, Transcript, TurnMetrics

SUBSCRIBER_QUEUE: Final = 1024

_encoder = msgspec.json.Encoder()


class Subscription:
    def __init__(self, tenant_id: str | None, size: int) -> None:
        self.tenant_id = tenant_id
        """None: every tenant (the platform admin)."""
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.overflowed = asyncio.Event()

    def offer(self, message: str) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed.set()


class LiveFeed:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    @contextmanager
    def subscribe(
        self, tenant_id: str | None, size: int = SUBSCRIBER_QUEUE
    ) -> Iterator[Subscription]:
        sub = Subscription(tenant_id, size)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def _publish(self, tenant_id: str, message: str) -> None:
        for sub in list(self._subscribers):
            if sub.tenant_id is None or sub.tenant_id == tenant_id:
                sub.offer(message)

    def publish_event(self, event: AnalyticsEvent) -> None:
        if self._subscribers:
            self._publish(event.tenant_id, encode_event(event).decode())

    def publish_live(self, info: CallInfo, event: CallEvent) -> None:
        """The live-only messages (state, partial transcripts, turn latency)."""
        if not self._subscribers:
            return
        body: dict[str, Any]
        match event:
            case StateChanged(state=state):
                body = {"type": "call.state", "state": state}
            case Transcript(final=False, role=role, text=text, turn=turn):
                body = {"type": "transcript.partial", "role": role, "text": text, "turn": turn}
            case TurnMetrics(turn=turn, marks=marks, voice_to_voice_ms=v2v):
                body = {"type": "turn.metrics", "turn": turn, "voice_to_voice_ms": v2v}
                body["marks"] = marks
            case _:
                return
        body["call_id"] = info.call_id
        body["tenant_id"] = info.tenant_id
        self._publish(info.tenant_id, _encoder.encode(body).decode())
