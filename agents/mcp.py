"""MCP tools: the tools of an agent's MCP servers (`[[mcp]]`, `agents/mcp_spec.py`), through the
official `mcp` SDK's client.

Discovery: each server's tools are listed when the call starts (in the background; the first
model request waits for it), and kept per agent and server settings for `DISCOVERY_TTL_S` by the
process-wide `DiscoveryCache` (a failed listing is not kept: the next call tries again; this
call goes on without that server's tools). Only `allowed_tools` are offered, to the model as
`server__tool` with the server's JSON schema for the arguments.

A call: arguments are checked against the schema first (`agents.argcheck`; a call that does not
fit reaches no server), then one connection is opened for it (for discovery likewise): HTTP
servers through the URL guard (`check_url`, then pinned connections with the operator's
`analytics.url_allowlist`), with the headers' tenant secrets; stdio servers only for the
operator's agents. The whole call is bounded by the server's `timeout_s`. The result's text is
cut at `max_result_chars`. Failures (the tool's own error, a timeout, an unreachable or vanished
server) come back to the model as "the tool failed: ..." and are logged with the server's and
tool's names only (never the URL or headers). A call still running after `FILLER_AFTER_S`
makes the agent say `FILLER_LINE` (once a reply), then the result follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import msgspec
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from agents.argcheck import argument_error
from agents.base import AgentContext, ToolResult
from agents.llm_access import pinned_client
from agents.mcp_spec import SEPARATOR, McpServerSpec
from agents.urlguard import UnsafeUrlError, check_url
from core.errors import Refused

log = logging.getLogger(__name__)

T = TypeVar("T")

DISCOVERY_TTL_S = 300.0
FILLER_AFTER_S = 1.0
FILLER_LINE = "One moment while I check."
MAX_PAGES = 10
"""Pages of a server's tool listing read at most."""


class McpFailed(Refused):
    """The node will not use a server by its own rules: a stdio server for a tenant's agent, an
    address the URL guard refuses, a header secret not stored (the text is for the model and
    the log; no secrets)."""


@dataclasses.dataclass(frozen=True, slots=True)
class McpTool:
    server: McpServerSpec
    name: str
    """Its name on the server."""
    exposed: str
    """Its name for the model (`server__tool`)."""
    description: str
    schema: dict[str, Any]


class DiscoveryCache:
    """Listed tools per (tenant, agent, server settings), kept `ttl_s` (clock injected)."""

    def __init__(
        self, ttl_s: float = DISCOVERY_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[tuple[str, str, bytes], tuple[float, tuple[McpTool, ...]]] = {}

    def get(self, key: tuple[str, str, bytes]) -> tuple[McpTool, ...] | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: tuple[str, str, bytes], tools: tuple[McpTool, ...]) -> None:
        self._entries[key] = (self._clock() + self._ttl_s, tools)

    def clear(self) -> None:
        self._entries.clear()


DISCOVERY = DiscoveryCache()


def _exposed(server: McpServerSpec, tool: str) -> str | None:
    name = f"{server.name}{SEPARATOR}{tool}"
    ok = 0 < len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    return name if ok else None


def _result_text(result: CallToolResult) -> str:
    parts = [
        block.text if isinstance(block, TextContent) else f"[{block.type}]"
        for block in result.content
    ]
    if not any(isinstance(block, TextContent) for block in result.content):
        if result.structured_content is not None:
            parts = [json.dumps(result.structured_content, ensure_ascii=False)]
    return "\n".join(parts)


class McpTools:
    """The MCP tools of one call's agent."""

    def __init__(
        self,
        servers: Sequence[McpServerSpec],
        ctx: AgentContext,
        agent: str,
        cache: DiscoveryCache | None = None,
    ) -> None:
        self._servers = tuple(servers)
        self._ctx = ctx
        self._agent = agent
        self._cache = cache or DISCOVERY
        access = ctx.llm
        self._operator = access is not None and access.operator_agent
        self._secrets = access.secrets if access is not None else {}
        self._resolver = access.resolver if access is not None else None
        self._tools: dict[str, McpTool] = {}
        self._discovery: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        return bool(self._servers)

    @property
    def side_effects(self) -> bool:
        return any(server.side_effects for server in self._servers)

    def owns(self, name: str) -> bool:
        return name in self._tools

    def acts(self, name: str) -> bool:
        tool = self._tools.get(name)
        return tool is not None and not tool.server.read_only(tool.name)

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI function-tool entries for the discovered tools."""
        out: list[dict[str, Any]] = []
        for tool in self._tools.values():
            function: dict[str, Any] = {"name": tool.exposed, "parameters": tool.schema}
            if tool.description:
                function["description"] = tool.description
            out.append({"type": "function", "function": function})
        return out

    def start(self) -> None:
        """Start discovery in the background (once; `prepare` waits for it)."""
        if self._servers and self._discovery is None:
            self._discovery = asyncio.get_running_loop().create_task(self._discover_all())

    async def prepare(self) -> None:
        """Discover the servers' tools (once per call). Never raises but `CancelledError`."""
        self.start()
        if self._discovery is not None:
            await asyncio.shield(self._discovery)

    async def aclose(self) -> None:
        if self._discovery is not None and not self._discovery.done():
            self._discovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._discovery

    async def _discover_all(self) -> None:
        found = await asyncio.gather(*(self._discover(server) for server in self._servers))
        for tools in found:
            for tool in tools:
                self._tools.setdefault(tool.exposed, tool)

    async def _discover(self, server: McpServerSpec) -> tuple[McpTool, ...]:
        key = (self._ctx.tenant_id, self._agent, msgspec.json.encode(server))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            async with asyncio.timeout(server.timeout_s):
                listed = await self._list(server)
        except Exception as exc:  # noqa: BLE001 (the call goes on without these tools)
            self._warn("mcp discovery failed", server, None, exc)
            return ()
        tools = tuple(self._offered(server, listed))
        self._cache.put(key, tools)
        log.info(
            "mcp tools discovered",
            extra=self._fields(server, None, tools=len(tools), listed=len(listed)),
        )
        return tools

    async def _list(self, server: McpServerSpec) -> list[Any]:
        listed: list[Any] = []
        async with self._connect(server) as client:
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
        return listed

    @staticmethod
    def _offered(server: McpServerSpec, listed: Sequence[Any]) -> list[McpTool]:
        out: list[McpTool] = []
        for tool in listed:
            exposed = _exposed(server, tool.name)
            if exposed is None or not server.allows(tool.name):
                continue
            schema = dict(tool.input_schema or {}) or {"type": "object", "properties": {}}
            out.append(McpTool(server, tool.name, exposed, tool.description or "", schema))
        return out

    @contextlib.asynccontextmanager
    async def _connect(self, server: McpServerSpec) -> AsyncIterator[Client]:
        if server.command:
            if not self._operator:
                raise McpFailed("stdio servers are for the operator's agents")
            params = StdioServerParameters(command=server.command[0], args=server.command[1:])
            async with Client(params) as client:
                yield client
            return
        allowlist = tuple(self._ctx.url_allowlist)
        try:
            await check_url(server.url, allowlist, self._resolver)
        except UnsafeUrlError as exc:
            raise McpFailed("its server's address is not allowed") from exc
        missing = [h for h, secret in server.headers.items() if secret not in self._secrets]
        if missing:
            raise McpFailed(f"no stored secret for the header {missing[0]}")
        headers = {h: self._secrets[secret] for h, secret in server.headers.items()}
        http = pinned_client(allowlist, self._resolver, timeout_s=server.timeout_s, headers=headers)
        async with http, Client(streamable_http_client(server.url, http_client=http)) as client:
            yield client

    async def run(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run the discovered tool `name` (the exposed one). Never raises but `CancelledError`."""
        tool = self._tools[name]
        server = tool.server
        if (problem := argument_error(tool.schema, arguments)) is not None:
            log.info("mcp call refused", extra=self._fields(server, tool, error="arguments"))
            return self._failed(tool, arguments, f"error: {problem}")
        try:
            async with asyncio.timeout(server.timeout_s):
                async with self._connect(server) as client:
                    result = await client.call_tool(tool.name, arguments)
        except TimeoutError as exc:
            self._warn("mcp call failed", server, tool, exc)
            return self._failed(tool, arguments, f"no answer within {server.timeout_s:g} s")
        except McpFailed as exc:
            self._warn("mcp call failed", server, tool, exc)
            return self._failed(tool, arguments, str(exc))
        except Exception as exc:  # noqa: BLE001 (an unreachable or vanished server)
            self._warn("mcp call failed", server, tool, exc)
            return self._failed(tool, arguments, "its server could not be reached")
        text = _result_text(result)
        if len(text) > server.max_result_chars:
            text = text[: server.max_result_chars] + " …[truncated]"
        if result.is_error:
            log.warning("mcp call failed", extra=self._fields(server, tool, error="tool_error"))
            return self._failed(tool, arguments, text or "it reported an error")
        return ToolResult(name=name, arguments=arguments, result=text)

    @staticmethod
    def _failed(tool: McpTool, arguments: dict[str, Any], why: str) -> ToolResult:
        text = why if why.startswith("error: ") else f"the tool failed: {why}"
        return ToolResult(name=tool.exposed, arguments=arguments, result=text, ok=False)

    def _warn(
        self, message: str, server: McpServerSpec, tool: McpTool | None, exc: BaseException
    ) -> None:
        log.warning(message, extra=self._fields(server, tool, error=_error_name(exc)))

    def _fields(
        self, server: McpServerSpec, tool: McpTool | None, **fields: object
    ) -> dict[str, object]:
        return {
            "call_id": self._ctx.call_id,
            "tenant_id": self._ctx.tenant_id,
            "agent": self._agent,
            "mcp_server": server.name,
            "tool": tool.name if tool is not None else None,
            **fields,
        }


def _error_name(exc: BaseException) -> str:
    """The error's type; for an exception group (the SDK's task groups), its first leaf's."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return type(exc).__name__


async def with_filler(
    run: Coroutine[Any, Any, T], deadline: float, after_s: float = FILLER_AFTER_S
) -> AsyncGenerator[T | None, None]:
    """Run `run` in a task: yield None if it is still running after `after_s` (the caller says
    `FILLER_LINE`), then its result. Raises `TimeoutError` past `deadline` (loop time); the
    task is cancelled when the generator is closed early (barge-in)."""
    task = asyncio.ensure_future(run)
    try:
        wait = min(after_s, max(0.0, deadline - asyncio.get_running_loop().time()))
        await asyncio.wait({task}, timeout=wait)
        if not task.done():
            yield None
        async with asyncio.timeout_at(deadline):
            result = await task
        yield result
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
