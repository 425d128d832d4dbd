"""Run a node app on a real uvicorn server (127.0.0.1, free port) with a fake host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec

from config.schema import HttpSettings, NodeSettings, Settings
from control_api.app import create_app
from media.webrtc import WebRtcOptions
from tests.control_api.fakes import FakeHost
from tests.media.webrtc_peer import LOOPBACK
from voicenode.serve import AppServer, bind_listener, server_config

ADMIN_KEY = "test-admin-key-0123456789"


class Node(msgspec.Struct, frozen=True):
    url: str
    host: FakeHost
    http: httpx.AsyncClient


def node_settings(max_calls: int = 2, admin_key: str = ADMIN_KEY) -> Settings:
    return Settings(
        http=HttpSettings(host="127.0.0.1", port=0, admin_key=admin_key),
        node=NodeSettings(max_calls=max_calls, drain_timeout_s=30),
    )


@asynccontextmanager
async def serve_node(host: FakeHost, settings: Settings | None = None) -> AsyncIterator[Node]:
    settings = settings or node_settings(max_calls=host.admission.max_calls)
    app = create_app(settings, host, webrtc=WebRtcOptions(host_addresses=LOOPBACK))
    sock = bind_listener("127.0.0.1", 0)
    server = AppServer(server_config(app, settings))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            yield Node(url=url, host=host, http=http)
    finally:
        server.should_exit = True
        await task
        sock.close()


def auth(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
