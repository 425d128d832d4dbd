"""`[[mcp]]` tables of an agent spec: the MCP tool servers an LLM agent may use.

A server is reached over streamable HTTP (`url`) or, for the operator's own agent files only
(`agents.dir`, the embedded agents), over stdio (`command`: a tenant's spec naming one is
refused when saved, and never started). `headers` map HTTP header names to the *names* of tenant
secrets (stored with `POST /v1/secrets`, like `llm.api_key_secret`); a secret never appears in
a spec. `allowed_tools` has no default: the tools the agent may call, by their name on the
server, or `["*"]` for all of them; `read_only_tools` (a subset, or `["*"]`) are those without
side effects, which may run in a reply started before the caller's turn is surely over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from agents.urlguard import Resolver, UnsafeUrlError, check_url

SEPARATOR = "__"
"""Between the server's and the tool's name in the name the model sees (`crm__find_customer`)."""

ALL = "*"

SecretName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
HeaderName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")]


class McpServerSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One MCP server of an agent (see the module docstring)."""

    name: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]|_(?!_)){0,23}$")]
    """Prefix of its tools' names for the model (`name__tool`); no `__` inside."""
    allowed_tools: list[str]
    """The tools the agent may call (their names on the server), or `["*"]` for all."""
    url: str = ""
    """Streamable-HTTP endpoint (`https://mcp.example.com/mcp`); the URL guard applies."""
    command: list[str] = msgspec.field(default_factory=list)
    """stdio server: the program and its arguments (operator agent files only)."""
    headers: dict[HeaderName, SecretName] = msgspec.field(default_factory=dict)
    """HTTP header name → the name of the tenant secret holding its value."""
    read_only_tools: list[str] = msgspec.field(default_factory=list)
    """Allowed tools without side effects (or `["*"]`): they may run speculatively."""
    timeout_s: Annotated[float, Meta(gt=0, le=60)] = 10.0
    """Longest wait for discovery or one tool call (connecting included)."""
    max_result_chars: Annotated[int, Meta(ge=100, le=20000)] = 4000
    """Longest tool result handed to the model (cut with a marker)."""

    def __post_init__(self) -> None:
        where = f"mcp {self.name!r}"
        if bool(self.url) == bool(self.command):
            raise ValueError(f"{where}: give one of `url` (streamable HTTP) and `command` (stdio)")
        if self.url and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"{where}: url must be http(s)")
        if self.command and self.headers:
            raise ValueError(f"{where}: headers are for `url` servers")
        if not self.allowed_tools:
            raise ValueError(f'{where}: allowed_tools is empty: list the tools, or ["*"] for all')
        if ALL not in self.allowed_tools:
            extra = set(self.read_only_tools) - set(self.allowed_tools) - {ALL}
            if extra:
                raise ValueError(f"{where}: read_only_tools not in allowed_tools: {sorted(extra)}")

    def allows(self, tool: str) -> bool:
        return ALL in self.allowed_tools or tool in self.allowed_tools

    def read_only(self, tool: str) -> bool:
        return self.allows(tool) and (ALL in self.read_only_tools or tool in self.read_only_tools)

    @property
    def side_effects(self) -> bool:
        """Some allowed tool of the server may have side effects."""
        if ALL in self.read_only_tools:
            return False
        unread = set(self.allowed_tools) - set(self.read_only_tools)
        return ALL in self.allowed_tools or bool(unread)


def servers_problem(servers: Sequence[McpServerSpec]) -> str | None:
    """What is wrong with an agent's list of servers as a whole (a name used twice), or None."""
    names = [server.name for server in servers]
    twice = sorted({name for name in names if names.count(name) > 1})
    return f"mcp servers named twice: {', '.join(twice)}" if twice else None


def secret_names(servers: Sequence[McpServerSpec]) -> list[str]:
    """The tenant secrets the servers' headers name (read when a call starts)."""
    return sorted({name for server in servers for name in server.headers.values()})


async def tenant_problem(
    server: McpServerSpec, allowlist: Sequence[str], resolver: Resolver | None = None
) -> str | None:
    """Why a tenant's agent may not use `server` (stdio, or a URL the guard refuses), or None."""
    if server.command:
        return (
            f"mcp {server.name!r}: command: stdio servers are for the operator's agent files; "
            "a tenant's agent reaches its MCP servers by url"
        )
    try:
        await check_url(server.url, allowlist, resolver)
    except UnsafeUrlError as exc:
        return f"mcp {server.name!r}: url: refused: {exc}"
    return None
