"""The flow's webhook action against a real HTTP server on 127.0.0.1 (an asyncio server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agents.base import AgentContext, CallStarted, TextChunk, ToolResult, UserSaid
from agents.catalog import parse_spec
from agents.flow import FlowAgent
from agents.flow.spec import WebhookSpec
from agents.flow.webhook import post_webhook
from agents.spec import AgentSpec


class LocalServer:
    """A minimal HTTP/1.1 server: records each request and answers with `status`/`body`."""

    def __init__(self) -> None:
        self.url = ""
        self.status = 200
        self.body = b"{}"
        self.extra_headers = ""
        self.requests: list[dict[str, Any]] = []
        self.received = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.handlers: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.strip().split("\r\n")
            method, path, _ = request_line.split(" ")
            headers = {}
            for line in header_lines:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(
                {"method": method, "path": path, "headers": headers, "json": json.loads(body)}
            )
            self.received.set()
            if self.hold is not None:
                await self.hold.wait()
            writer.write(
                f"HTTP/1.1 {self.status} Reply\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.body)}\r\nConnection: close\r\n"
                f"{self.extra_headers}\r\n".encode()
                + self.body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up (timeout, cancellation)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    local = LocalServer()
    srv = await asyncio.start_server(local.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    local.url = f"http://127.0.0.1:{port}"
    try:
        yield local
    finally:
        if local.hold is not None:
            local.hold.set()
        srv.close()
        await srv.wait_closed()
        await asyncio.gather(*local.handlers, return_exceptions=True)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


SPEC = """
name = "booker"
kind = "flow"
greeting = "Hi."
[flow]
start = "main"
[flow.slots.name]
type = "name"
prompt = "Your name?"
[flow.webhooks.book]
url = "{url}/bookings"
timeout_s = {timeout}
slots = ["name"]
on_error = "I couldn't save that, but the front desk will call you back."
[flow.nodes.main]
do = [{{ ask = "name" }}, {{ say = "One moment." }}, {{ webhook = "book" }}, {{ goto = "done" }}]
[flow.nodes.done]
prompt = "Anything else?"
routes = [{{ intent = "no", do = [{{ end = true }}] }}]
"""


def booker(url: str, timeout_s: float = 5.0) -> AgentSpec:
    return parse_spec(SPEC.format(url=url, timeout=timeout_s), "booker.toml")


async def run_booking(
    server: LocalServer, http: httpx.AsyncClient, *, allow: bool = True, timeout_s: float = 5.0
) -> tuple[FlowAgent, str, list[ToolResult]]:
    ctx = AgentContext(
        call_id="call-7",
        tenant_id="demo",
        http=http,
        url_allowlist=("127.0.0.1",) if allow else (),
    )
    agent = FlowAgent(booker(server.url, timeout_s), ctx)
    greeting = [o async for o in agent.respond([], CallStarted())]
    assert greeting == [TextChunk("Hi."), TextChunk(" Your name?")]
    outs = [o async for o in agent.respond([], UserSaid("my name is Jane Doe"))]
    text = "".join(o.text for o in outs if isinstance(o, TextChunk))
    tools = [o for o in outs if isinstance(o, ToolResult)]
    return agent, text, tools


async def test_posts_the_slots_and_speaks_the_reply(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    server.body = json.dumps(
        {"say": "Your confirmation number is 42.", "slots": {"ref": "42", "n": 7}}
    ).encode()
    agent, text, tools = await run_booking(server, http)
    assert server.requests == [
        {
            "method": "POST",
            "path": "/bookings",
            "headers": server.requests[0]["headers"],
            "json": {
                "call_id": "call-7",
                "agent": "booker",
                "webhook": "book",
                "slots": {"name": "Jane Doe"},
            },
        }
    ]
    assert server.requests[0]["headers"]["content-type"] == "application/json"
    assert text == "One moment. Your confirmation number is 42. Anything else?"
    assert tools == [
        ToolResult(
            name="webhook",
            arguments={
                "webhook": "book",
                "url": f"{server.url}/bookings",
                "slots": {"name": "Jane Doe"},
            },
            result="HTTP 200",
            ok=True,
        )
    ]
    assert agent.slots == {"name": "Jane Doe", "ref": "42", "n": "7"}


async def test_a_failed_webhook_does_not_break_the_call(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    server.status = 500
    server.body = b'{"say": "must not be spoken"}'
    agent, text, tools = await run_booking(server, http)
    assert text == (
        "One moment. I couldn't save that, but the front desk will call you back. Anything else?"
    )
    assert [(t.ok, t.result) for t in tools] == [(False, "HTTP 500")]
    assert agent.node == "done"
    assert not agent.ended


async def test_redirects_are_not_followed(server: LocalServer, http: httpx.AsyncClient) -> None:
    server.status = 302
    server.extra_headers = "Location: http://169.254.169.254/latest/meta-data/\r\n"
    _agent, text, tools = await run_booking(server, http)
    assert [(t.ok, t.result) for t in tools] == [(False, "HTTP 302")]
    assert len(server.requests) == 1
    assert "front desk will call you back" in text


async def test_private_targets_are_blocked_unless_allow_listed(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    _agent, text, tools = await run_booking(server, http, allow=False)
    assert len(tools) == 1
    assert not tools[0].ok
    assert tools[0].result.startswith("blocked:")
    assert server.requests == []
    assert "front desk will call you back" in text


async def test_a_slow_webhook_times_out(server: LocalServer, http: httpx.AsyncClient) -> None:
    server.hold = asyncio.Event()
    _agent, text, tools = await run_booking(server, http, timeout_s=0.2)
    assert [(t.ok, t.result) for t in tools] == [(False, "timed out after 0.2 s")]
    assert text.endswith("the front desk will call you back. Anything else?")


async def test_unreadable_replies_are_ignored(server: LocalServer, http: httpx.AsyncClient) -> None:
    server.body = b"<html>ok</html>"
    agent, text, tools = await run_booking(server, http)
    assert text == "One moment. Anything else?"
    assert tools[0].ok
    assert agent.slots == {"name": "Jane Doe"}


async def test_cancellation_is_not_swallowed(server: LocalServer, http: httpx.AsyncClient) -> None:
    server.hold = asyncio.Event()
    ctx = AgentContext(call_id="c", tenant_id="t", http=http, url_allowlist=("127.0.0.1",))
    agent = FlowAgent(booker(server.url), ctx)
    _ = [o async for o in agent.respond([], CallStarted())]

    async def reply() -> None:
        async for _ in agent.respond([], UserSaid("Jane")):
            pass

    task = asyncio.create_task(reply())
    await server.received.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_post_webhook_directly(server: LocalServer, http: httpx.AsyncClient) -> None:
    hook = WebhookSpec(url=f"{server.url}/x", timeout_s=2)
    server.body = b'{"say": 5, "slots": ["not", "a", "dict"]}'
    outcome = await post_webhook(http, hook, {"a": 1}, allowlist=["127.0.0.0/8"])
    assert outcome.ok
    assert outcome.say == ""
    assert dict(outcome.slots) == {}
    assert server.requests[0]["json"] == {"a": 1}
    closed = WebhookSpec(url="http://127.0.0.1:9/", timeout_s=2)
    failed = await post_webhook(http, closed, {}, allowlist=["127.0.0.1"])
    assert not failed.ok
    assert failed.detail.startswith("request failed: ")
