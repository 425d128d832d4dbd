"""Shared pieces of the analytics tests: a store with the tables, settings, a fake call source
(what `LiveCalls.subscribe`/`get` give), a scripted call, condition waits."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Router
from litestar.middleware import DefineMiddleware

from config.schema import AnalyticsSettings, NodeSettings, Settings
from control_api.analytics import Analytics
from control_api.analytics import tables as _tables  # registers the tables
from control_api.app import analytics_routers
from control_api.auth import BearerAuth, Principal
from control_api.store import Base, Store, open_store
from control_api.store.crypto import SecretBox, new_key
from media.call import CallInfo, Direction
from pipeline.events import (
    CallEnded,
    CallEvent,
    StateChanged,
    ToolCalled,
    Transcript,
    TurnMetrics,
)
from voicenode.serve import AppServer, bind_listener, server_config

NODE = "node-test"
TABLES = _tables
T0 = datetime.datetime(2025, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


def settings(**analytics: Any) -> Settings:
    return Settings(
        node=NodeSettings(name=NODE),
        analytics=AnalyticsSettings(**analytics),
    )


async def make_store(path: Path) -> Store:
    store = open_store(f"sqlite+aiosqlite:///{path}", SecretBox(new_key()))
    async with store.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await make_store(tmp_path / "analytics.db")
    try:
        yield s
    finally:
        await s.close()


class WallClock:
    """An injected wall clock that moves one millisecond per reading."""

    def __init__(self, start: datetime.datetime = T0) -> None:
        self.at = start

    def __call__(self) -> datetime.datetime:
        self.at += datetime.timedelta(milliseconds=1)
        return self.at


class FakeCalls:
    """Stands in for `LiveCalls`: `emit` reports an event to every subscriber."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[CallInfo, CallEvent], None]] = []
        self.live: set[str] = set()

    def subscribe(self, listener: Callable[[CallInfo, CallEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def get(self, call_id: str) -> object | None:
        return object() if call_id in self.live else None

    def emit(self, info: CallInfo, event: CallEvent) -> None:
        self.live.add(info.call_id)
        for listener in list(self.listeners):
            listener(info, event)
        if isinstance(event, CallEnded):
            self.live.discard(info.call_id)


def call_info(call_id: str, tenant: str = "demo", agent: str = "receptionist") -> CallInfo:
    return CallInfo(
        call_id=call_id,
        tenant_id=tenant,
        direction=Direction.INBOUND,
        from_uri="sip:+15550100@example.com",
        to_uri=f"agent:{agent}",
        transport="sip",
    )


def opening(turn: int = 1) -> list[CallEvent]:
    """A call's first turn: 3 analytics events with call.started (started, 2 finals)."""
    return [
        StateChanged("listening"),
        Transcript(role="user", text="hello I'd like", final=False, turn=turn),
        Transcript(role="user", text="hello I'd like to book, thanks", final=True, turn=turn),
        Transcript(role="agent", text="Sure, what day?", final=True, turn=turn),
        TurnMetrics(turn=turn, marks={"stt_final": 0.2, "first_audio": 0.6}, voice_to_voice_ms=640),
    ]


def closing(reason: str = "completed") -> list[CallEvent]:
    """A tool call and the end: tool.called (+ call.transferred), then call.ended."""
    return [
        ToolCalled(name="lookup", arguments={"day": "tuesday"}, result="free", ok=True),
        CallEnded(reason=reason, duration_s=42.0, slots={"day": "tuesday"}),
    ]


async def wait_for(
    condition: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = ""
) -> None:
    """Poll `condition` until it holds (bounded by `timeout_s`)."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.01)  # polling a condition that has no event to wait on
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or condition}") from None


# ---- a webhook receiver and the API on a real server ----


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs; `status_for(request)` picks the answer."""

    def __init__(self, status_for: Callable[[Received], int] = lambda _r: 200) -> None:
        self.status_for = status_for
        self.requests: list[Received] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, path, _version = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(path=path, headers=headers, body=body)
            self.requests.append(request)
            status = self.status_for(request)
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()


class Keys:
    """API keys → principals (what `KeyRing.principal_for` does)."""

    def __init__(self, keys: dict[str, Principal]) -> None:
        self.keys = keys

    async def principal_for(self, key: str) -> Principal | None:
        return self.keys.get(key)

    def phone_principal(self, token: str) -> Principal | None:
        return None  # no phone tokens here

    def retry_after(self, source: str) -> int | None:
        return None  # no failed-auth limits here

    def failed(self, source: str) -> None:
        pass


ADMIN = "admin-key-0123456789"
ACME = "acme-key-0123456789"
VIEWER = "acme-viewer-0123456789"
KEYS = Keys(
    {
        ADMIN: Principal(),
        ACME: Principal(tenant_id="acme"),
        VIEWER: Principal(tenant_id="acme", role="viewer"),
    }
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def serve_api(
    analytics: Analytics, keys: Keys = KEYS, extra: Sequence[Router] = ()
) -> AsyncIterator[httpx.AsyncClient]:
    """The analytics routes (and `extra` ones) on a real uvicorn server (127.0.0.1, free
    port)."""

    app = Litestar(
        route_handlers=[
            *analytics_routers(
                analytics,
                principal_for=keys.principal_for,
                middleware=[DefineMiddleware(BearerAuth, keys=keys)],
            ),
            *extra,
        ],
        logging_config=None,
        debug=False,
    )
    sock = bind_listener("127.0.0.1", 0)
    server = AppServer(server_config(app, analytics.settings))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            yield http
    finally:
        server.should_exit = True
        await task
        sock.close()
