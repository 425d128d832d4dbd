"""The node's own account of the bench's calls, over its public API: the tenant's live events
(`WS /v1/events`: final transcripts, `turn.metrics`, `call.ended`) and, for a call whose end
the socket did not show, the call history (`GET /v1/calls/{id}`).

Works the same for every transport: all the bench needs is the node's call id of each leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bench.wire.timeline import NodeTranscript, NodeTurn

log = logging.getLogger(__name__)

LEG_PARAM: Final = "x-bench-leg"
"""The Request-URI parameter a SIP leg names itself with (`bench.wire.sip_leg`): an unknown
URI parameter, which SIP elements pass on and the node's number routing ignores."""
_LEG_NAME: Final = re.compile(rf";{LEG_PARAM}=([0-9a-f]{{32}})(?:[;>?]|$)")


def sip_leg_name(request_uri: str) -> str | None:
    """The bench leg's name in a Request-URI (`...;x-bench-leg=<32 hex>`), or None."""
    found = _LEG_NAME.search(request_uri)
    return found.group(1) if found else None


@dataclass
class CallEvents:
    transcripts: list[NodeTranscript] = field(default_factory=list)
    turns: list[NodeTurn] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    latency: dict[str, Any] | None = None
    """The `latency` summary of `call.ended`."""


def ws_url(base_url: str, tenant: str) -> str:
    scheme, _, rest = base_url.rstrip("/").partition("://")
    ws = "wss" if scheme == "https" else "ws"
    return f"{ws}://{rest}/v1/events?{urlencode({'tenant': tenant})}"


class NodeEvents:
    """Collects the tenant's events while entered (an async context manager)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        tenant: str,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http_transport = http_transport
        """For tests: an httpx transport for the history requests (httpx.MockTransport)."""
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._tenant = tenant
        self.calls: dict[str, CallEvents] = {}
        self.error = ""
        """Why events are unavailable ("" while they flow)."""
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def call(self, call_id: str) -> CallEvents:
        return self.calls.setdefault(call_id, CallEvents())

    async def __aenter__(self) -> NodeEvents:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        try:
            self._ws = await connect(
                ws_url(self._base_url, self._tenant),
                additional_headers=headers,
                open_timeout=10,
                max_size=2**22,
            )
            ready = json.loads(await asyncio.wait_for(self._ws.recv(), 10))
            if ready.get("type") != "ready":
                raise ValueError(f"expected a ready message, got {ready.get('type')!r}")
        except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
            self.error = f"events socket unavailable: {exc}"
            log.warning("events socket unavailable", extra={"error": str(exc)})
            if self._ws is not None:
                await self._ws.close()
                self._ws = None
            return self
        self._task = asyncio.get_running_loop().create_task(self._read(), name="bench-events")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._ws is not None:
            with contextlib.suppress(WebSocketException, OSError):
                await self._ws.close()

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    self.feed(message)
        except WebSocketException as exc:
            self.error = f"events socket closed: {exc}"
            log.warning("events socket closed", extra={"error": str(exc)})

    def feed(self, message: dict[str, Any]) -> None:
        """Take one event message (public for tests)."""
        call_id = message.get("call_id")
        if not isinstance(call_id, str):
            return
        kind = message.get("type")
        ev = self.call(call_id)
        if kind == "call.started":
            # An AudioSocket leg knows its call by the UUID it sent; the node's call id is its
            # own: file the call under both.
            source = str(message.get("from_uri", ""))
            if source.startswith("audiosocket:"):
                with contextlib.suppress(ValueError):
                    self.calls[uuid.UUID(source.removeprefix("audiosocket:")).hex] = ev
            # A SIP leg names itself in the Request-URI, which the node reports as `to_uri`.
            if (leg := sip_leg_name(str(message.get("to_uri", "")))) is not None:
                self.calls[leg] = ev
        elif kind == "transcript.final":
            ev.transcripts.append(
                NodeTranscript(
                    role=str(message.get("role", "")),
                    text=str(message.get("text", "")),
                    turn=int(message.get("turn", 0)),
                    interrupted=bool(message.get("interrupted", False)),
                )
            )
        elif kind == "turn.metrics":
            marks = message.get("marks") or {}
            v2v = message.get("voice_to_voice_ms")
            ev.turns.append(
                NodeTurn(
                    turn=int(message.get("turn", 0)),
                    marks={str(k): float(v) for k, v in marks.items()},
                    voice_to_voice_ms=float(v2v) if v2v is not None else None,
                )
            )
        elif kind == "call.ended":
            latency = message.get("latency")
            ev.latency = latency if isinstance(latency, dict) else None
            ev.ended.set()

    async def wait_ended(self, call_ids: Iterable[str], timeout_s: float) -> None:
        """Wait (up to `timeout_s`) until every call's `call.ended` arrived; then fetch the
        transcripts of those that did not from the call history."""
        ids = list(call_ids)
        if self._task is not None:
            waits = [self.call(c).ended.wait() for c in ids]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(*waits)
        missing = [c for c in ids if not self.call(c).ended.is_set()]
        if missing:
            await self._from_history(missing)

    async def _from_history(self, call_ids: list[str]) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        async with httpx.AsyncClient(
            base_url=self._base_url, headers=headers, transport=self._http_transport
        ) as client:
            for call_id in call_ids:
                try:
                    r = await client.get(
                        f"/v1/calls/{call_id}", params={"tenant": self._tenant}, timeout=10
                    )
                except httpx.HTTPError as exc:
                    log.warning("call history unavailable", extra={"error": str(exc)})
                    continue
                if r.status_code != 200:
                    continue
                body = r.json()
                ev = self.call(call_id)
                if not ev.transcripts:
                    ev.transcripts = [
                        NodeTranscript(
                            role=str(t.get("role", "")),
                            text=str(t.get("text", "")),
                            turn=int(t.get("turn", 0)),
                            interrupted=bool(t.get("interrupted", False)),
                        )
                        for t in body.get("transcript") or []
                    ]
                if ev.latency is None and isinstance(body.get("latency"), dict):
                    ev.latency = body["latency"]
