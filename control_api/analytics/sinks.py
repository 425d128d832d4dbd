"""Where the relay delivers outbox events: a Redis Stream, tenants' webhooks.

Webhook requests are signed: `X-Voicenode-Signature: t=TIMESTAMP,v1=HEX` where HEX is the
HMAC-SHA256, keyed with the webhook's secret, of `TIMESTAMP` + `.` + the raw body. Receivers
recompute it (`verify_signature`), compare in constant time and refuse old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

import httpx
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from agents.urlguard import UnsafeUrlError, check_url
from config.schema import AnalyticsSettings
from control_api.analytics.stream_erasure import erase_in_stream, erasures
from control_api.analytics.tables import OutboxRow
from core.errors import TransportError

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Voicenode-Signature"
EVENT_ID_HEADER: Final = "X-Voicenode-Event-Id"
EVENT_TYPE_HEADER: Final = "X-Voicenode-Event-Type"
SIGNATURE_TOLERANCE_S: Final = 300

TenantUrls: TypeAlias = Callable[[], tuple[Sequence[str], httpx.AsyncClient]]
"""Where webhooks may go now: the URL allowlist and the client that enforces it, read
together (a node's reload replaces both; a relay pass reads them once)."""


class DeliveryError(TransportError):
    """A sink did not take an event; `detail` is safe to store (no secrets, no payload).

    Retryable: the relay sends the event or batch again after a backoff."""

    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail[:256]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Voicenode-Signature` value for `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: float, tolerance_s: float = SIGNATURE_TOLERANCE_S
) -> bool:
    """True when `header` signs `body` with `secret` and its timestamp is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class RedisStreamSink:
    """XADDs events to one stream: fields `id`, `tenant_id`, `type`, `call_id`, `seq`,
    `payload` (the event JSON). A batch is one pipeline: all taken, or retried as a whole.
    An erasure event in a batch then deletes what the stream holds of what it erased
    (`stream_erasure`). When that deletion fails after the batch's XADDs were taken, the batch
    fails (the relay retries it), and the retry adds only what was not added yet, then deletes
    again: the erasure is not lost and the batch's events are not in the stream twice."""

    key = "redis"

    def __init__(self, url: str, stream: str, *, maxlen: int = 0, timeout_s: float = 5.0):
        self.stream = stream
        self._maxlen = maxlen or None
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # the relay retries, on its clock
        )
        self._added: frozenset[str] = frozenset()
        """Ids of the last batch's events already in the stream, when its erasure failed."""

    async def send_batch(self, rows: Sequence[OutboxRow]) -> None:
        try:
            todo = [row for row in rows if row.event_id not in self._added]
            if todo:
                await self._add(todo)
            self._added = frozenset(row.event_id for row in rows)
            found = erasures(rows)
            if found:
                deleted = await erase_in_stream(self._redis, self.stream, found)
                log.info(
                    "redis stream entries of an erasure deleted",
                    extra={"stream": self.stream, "erasures": len(found), "deleted": deleted},
                )
            self._added = frozenset()
        except (RedisError, OSError) as exc:
            raise DeliveryError(f"redis: {type(exc).__name__}") from exc

    async def _add(self, rows: Sequence[OutboxRow]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.xadd(
                    self.stream,
                    {
                        "id": row.event_id,
                        "tenant_id": row.tenant_id,
                        "type": row.type,
                        "call_id": row.call_id,
                        "seq": str(row.seq),
                        "payload": row.payload,
                    },
                    maxlen=self._maxlen,
                    approximate=True,
                )
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()


class WebhookSink:
    """POSTs one event per request to a tenant's endpoint, signed; 2xx is delivered.

    The URL is checked before every request (resolved addresses must be public unless
    allow-listed) and redirects are never followed.
    """

    def __init__(
        self,
        *,
        webhook_id: str,
        tenant_id: str,
        url: str,
        secret: str,
        events: Sequence[str],
        after_outbox_id: int,
        http: httpx.AsyncClient,
        wall: Callable[[], float],
        timeout_s: float,
        allowlist: Sequence[str] | None,
    ) -> None:
        self.key = f"webhook:{webhook_id}"
        self.webhook_id = webhook_id
        self.tenant_id = tenant_id
        self.events = frozenset(events)
        self.after_outbox_id = after_outbox_id
        self._url = url
        self._secret = secret
        self._http = http
        self._wall = wall
        self._timeout_s = timeout_s
        self._allowlist = allowlist
        """None: any address (allow_private_urls)."""

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    async def send(self, row: OutboxRow) -> None:
        if self._allowlist is not None:
            try:
                await check_url(self._url, self._allowlist)
            except UnsafeUrlError as exc:
                raise DeliveryError(f"refused URL: {exc}") from exc
        body = row.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "voicenode-webhooks/1",
            EVENT_ID_HEADER: row.event_id,
            EVENT_TYPE_HEADER: row.type,
            SIGNATURE_HEADER: sign(self._secret, int(self._wall()), body),
        }
        try:
            response = await self._http.post(
                self._url,
                content=body,
                headers=headers,
                timeout=self._timeout_s,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"http: {type(exc).__name__}") from exc
        except UnsafeUrlError as exc:  # the pinned connection refused the resolved address
            raise DeliveryError(f"refused URL: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"http status {response.status_code}")


def open_stream_sink(settings: AnalyticsSettings) -> RedisStreamSink | None:
    if not settings.redis_url:
        return None
    return RedisStreamSink(settings.redis_url, settings.stream, maxlen=settings.stream_maxlen)
