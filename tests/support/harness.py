"""Run a node app on a real uvicorn server (127.0.0.1, free port) with a fake or real host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import msgspec

from config.loader import load_settings
from config.schema import HttpSettings, NodeSettings, Settings
from control_api.app import create_app
from control_api.host import CallHost
from control_api.phone import PhoneTokens
from media.clock import Clock
from media.webrtc import WebRtcOptions
from pipeline.engines import Engines
from tests.support.host import FakeHost, temp_store
from tests.support.webrtc_peer import LOOPBACK
from voicenode.node import Node as VoiceNode
from voicenode.node import open_node
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
async def serve_app(
    host: CallHost,
    settings: Settings,
    webrtc: WebRtcOptions | None = None,
    *,
    clock: Clock | None = None,
    phone: PhoneTokens | None = None,
) -> AsyncIterator[str]:
    """The app for `host` on uvicorn at 127.0.0.1 (free port) in this loop; yields its URL.
    WebRTC: `webrtc`, by default the settings' `[webrtc]` section; `clock` and `phone` as
    `create_app` takes them."""
    webrtc = webrtc or WebRtcOptions.from_settings(settings.webrtc)
    app = create_app(settings, host, webrtc=webrtc, clock=clock, phone=phone)
    sock = bind_listener("127.0.0.1", 0)
    server = AppServer(server_config(app, settings))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def serve_node(
    host: FakeHost,
    settings: Settings | None = None,
    webrtc: WebRtcOptions | None = None,
    *,
    clock: Clock | None = None,
    phone: PhoneTokens | None = None,
) -> AsyncIterator[Node]:
    settings = settings or node_settings(max_calls=host.admission.max_calls)
    webrtc = webrtc or WebRtcOptions(host_addresses=LOOPBACK)
    async with AsyncExitStack() as stack:
        if not host.has_store:
            await host.attach_store(await stack.enter_async_context(temp_store()))
        app = serve_app(host, settings, webrtc, clock=clock, phone=phone)
        url = await stack.enter_async_context(app)
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=20))
        yield Node(url=url, host=host, http=http)


def auth(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class RealNode(msgspec.Struct, frozen=True):
    """The real node (embedded models, the demo tenant's agents) served on a free port."""

    url: str
    node: VoiceNode
    http: httpx.AsyncClient

    @property
    def engines(self) -> Engines:
        assert self.node.engines is not None
        return self.node.engines


def real_node_settings(data_dir: Path, admin_key: str = ADMIN_KEY, max_calls: int = 2) -> Settings:
    """The embedded defaults for browser calls: the store under `data_dir`, HTTP and WebRTC on
    127.0.0.1 (HTTP on a free port), telephony off (the SIP side has its own end-to-end tests)."""
    s = load_settings(env={})
    return msgspec.structs.replace(
        s,
        http=msgspec.structs.replace(s.http, host="127.0.0.1", port=0, admin_key=admin_key),
        node=msgspec.structs.replace(
            s.node, data_dir=str(data_dir), max_calls=max_calls, drain_timeout_s=10
        ),
        webrtc=msgspec.structs.replace(s.webrtc, host_addresses=LOOPBACK, connect_timeout_s=15),
        sip=msgspec.structs.replace(s.sip, enabled=False, host="127.0.0.1", port=0),
        audiosocket=msgspec.structs.replace(s.audiosocket, host="127.0.0.1", port=0),
    )


@asynccontextmanager
async def serve_real_node(settings: Settings) -> AsyncIterator[RealNode]:
    """`voicenode serve` in this loop (models loaded before it yields), minus the signals."""
    async with open_node(settings) as node:
        async with asyncio.timeout(60):
            await node.wait_ready()
        async with (
            serve_app(node, settings) as url,
            httpx.AsyncClient(base_url=url, timeout=20) as http,
        ):
            yield RealNode(url=url, node=node, http=http)
