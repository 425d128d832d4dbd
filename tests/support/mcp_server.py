"""A real MCP server for the tests: the `mcp` SDK's `MCPServer` over streamable HTTP, on uvicorn at
127.0.0.1 (a free port) in the test's loop. Its tools record the arguments they received."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

from voicenode.serve import bind_listener

BIG = "x" * 10_000


@dataclasses.dataclass
class McpBackend:
    """What the server's tools saw, and the gate its slow tool waits on."""

    calls: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    headers: list[dict[str, str]] = dataclasses.field(default_factory=list)
    slow_started: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    release_slow: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


def build_server(backend: McpBackend) -> MCPServer:
    server = MCPServer("crm", log_level="WARNING")

    @server.tool(description="Find a customer's next appointment by last name.")
    def next_appointment(last_name: str, limit: int = 1) -> str:
        backend.calls.append(("next_appointment", {"last_name": last_name, "limit": limit}))
        return f"{last_name}: Tuesday 10:30 with Dr. Moss"

    @server.tool(description="Book a slot.")
    def book(day: str) -> str:
        backend.calls.append(("book", {"day": day}))
        return f"booked {day}"

    @server.tool(description="Look something up slowly.")
    async def slow_lookup(query: str) -> str:
        backend.calls.append(("slow_lookup", {"query": query}))
        backend.slow_started.set()
        await backend.release_slow.wait()
        return f"found {query}"

    @server.tool(description="Always fails.")
    def broken(reason: str) -> str:
        backend.calls.append(("broken", {"reason": reason}))
        raise ValueError(f"backend down: {reason}")

    @server.tool(description="Returns a long text.")
    def dump() -> str:
        backend.calls.append(("dump", {}))
        return BIG

    return server


class _Recorder:
    """ASGI middleware keeping each request's headers (the tests check the secret header)."""

    def __init__(self, app: Any, backend: McpBackend) -> None:
        self._app = app
        self._backend = backend

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self._backend.headers.append(
                {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            )
        await self._app(scope, receive, send)


@dataclasses.dataclass
class RunningMcp:
    url: str
    backend: McpBackend
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop the server (idempotent); its port then refuses connections."""
        self.server.should_exit = True
        await self.task


@contextlib.asynccontextmanager
async def serve_mcp() -> AsyncIterator[RunningMcp]:
    """The test MCP server, running until the block ends (or `stop`)."""
    backend = McpBackend()
    app = build_server(backend).streamable_http_app(host="127.0.0.1", stateless_http=True)
    sock = bind_listener("127.0.0.1", 0)
    config = uvicorn.Config(_Recorder(app, backend), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        yield RunningMcp(f"http://127.0.0.1:{port}/mcp", backend, server, task)
    finally:
        backend.release_slow.set()
        server.should_exit = True
        await task
        sock.close()
