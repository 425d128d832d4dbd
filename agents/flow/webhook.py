"""The flow's HTTP webhook action: POST the collected slots as JSON, read an optional reply.

The URL is checked by `agents.urlguard` first (no private/loopback targets unless
allow-listed) and redirects are never followed. Failures come back as a `WebhookOutcome` with
`ok=False` (the conversation goes on); cancellation is never swallowed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence

import httpx

from agents.flow.spec import WebhookSpec
from agents.urlguard import UnsafeUrlError, fetch

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 16_384
MAX_SAY_CHARS = 500
MAX_REPLY_SLOTS = 32


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookOutcome:
    ok: bool
    detail: str
    """"HTTP 200", "timed out after 5.0 s", "blocked: ..." (for the ToolResult)."""
    say: str = ""
    slots: Mapping[str, str] = dataclasses.field(default_factory=dict)


async def post_webhook(
    http: httpx.AsyncClient,
    hook: WebhookSpec,
    payload: Mapping[str, object],
    *,
    allowlist: Sequence[str] = (),
    log_extra: Mapping[str, object] | None = None,
) -> WebhookOutcome:
    """POST `payload` to `hook.url` within `hook.timeout_s` (URL check included)."""
    extra = dict(log_extra or {})
    try:
        async with asyncio.timeout(hook.timeout_s):
            response = await fetch(
                http,
                "POST",
                hook.url,
                allowlist=allowlist,
                json=dict(payload),
                timeout_s=hook.timeout_s,
                max_bytes=MAX_REPLY_BYTES,
            )
    except UnsafeUrlError as exc:
        log.warning("flow webhook blocked", extra={**extra, "error": str(exc)})
        return WebhookOutcome(False, f"blocked: {exc}")
    except TimeoutError:
        log.warning("flow webhook timed out", extra={**extra, "timeout_s": hook.timeout_s})
        return WebhookOutcome(False, f"timed out after {hook.timeout_s} s")
    except httpx.HTTPError as exc:
        log.warning("flow webhook failed", extra={**extra, "error": f"{type(exc).__name__}: {exc}"})
        return WebhookOutcome(False, f"request failed: {type(exc).__name__}")
    if not response.ok:
        log.warning("flow webhook refused", extra={**extra, "status": response.status_code})
        return WebhookOutcome(False, f"HTTP {response.status_code}")
    say, slots = _read_reply(response.text)
    log.info("flow webhook done", extra={**extra, "status": response.status_code})
    return WebhookOutcome(True, f"HTTP {response.status_code}", say=say, slots=slots)


def _read_reply(body: str) -> tuple[str, dict[str, str]]:
    """`say` and `slots` from a JSON object reply; anything else is ignored."""
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        return "", {}
    if not isinstance(data, dict):
        return "", {}
    say = data.get("say")
    raw_slots = data.get("slots")
    slots: dict[str, str] = {}
    if isinstance(raw_slots, dict):
        for key, value in list(raw_slots.items())[:MAX_REPLY_SLOTS]:
            if isinstance(key, str) and isinstance(value, str | int | float):
                slots[key] = str(value)
    return (say[:MAX_SAY_CHARS] if isinstance(say, str) else ""), slots
