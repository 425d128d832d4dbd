"""How an agent reaches its model: the API key, and the guard on `base_url`.

The node decides per call (`LlmAccess.for_agent`): a tenant's agent gets the tenant secret it
names (`llm.api_key_secret`) and a client whose connections go only to public or allow-listed
addresses, checked and pinned at connect time (`agents.urlguard.PinnedTransport`); only the
operator's own file agents may take a key from the node's environment (`llm.api_key_env`) and
reach a private endpoint (a local model server). The LLM agent and the outcome model both open
their client here, so they read the key the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpcore2
import httpx2
import openai

from agents.spec import LlmSettings
from agents.urlguard import Resolver, UnsafeUrlError, pinned_connect


class _PinnedBackend(httpcore2.AsyncNetworkBackend):
    """`agents.urlguard`'s pinned connections for the OpenAI client (httpx2/httpcore2)."""

    def __init__(self, allowlist: Sequence[str], resolver: Resolver | None) -> None:
        self._allowlist = tuple(allowlist)
        self._resolver = resolver
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            stream: httpcore2.AsyncNetworkStream = await pinned_connect(
                self._inner,
                (httpcore2.ConnectError, httpcore2.ConnectTimeout),
                host,
                port,
                allowlist=self._allowlist,
                resolver=self._resolver,
                timeout=timeout,
                local_address=local_address,
                socket_options=socket_options,
            )
        except UnsafeUrlError as exc:  # the OpenAI client reports it as a connection error
            raise httpcore2.ConnectError(str(exc)) from exc
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise UnsafeUrlError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, allowlist: Sequence[str], resolver: Resolver | None) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=5,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(allowlist, resolver),
        )


def pinned_client(
    allowlist: Sequence[str],
    resolver: Resolver | None,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
) -> httpx2.AsyncClient:
    """An httpx2 client whose connections are checked and pinned (`agents.urlguard`); no
    redirects, no environment proxies. The model's client and MCP servers' (`agents.mcp`)."""
    return httpx2.AsyncClient(
        transport=_PinnedTransport(allowlist, resolver),
        timeout=timeout_s,
        headers=dict(headers or {}),
        follow_redirects=False,
        trust_env=False,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class LlmAccess:
    api_key: str = dataclasses.field(default="", repr=False)
    operator_agent: bool = False
    """The operator's own agent: `base_url` is not guarded."""
    url_allowlist: tuple[str, ...] = ()
    """Non-public hosts/CIDRs a tenant's `base_url` may reach anyway (the operator's)."""
    resolver: Resolver | None = None
    """DNS seam for the guard (None: the system's)."""
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    """The tenant secrets the spec names besides the key: its MCP servers' headers."""

    @classmethod
    def for_agent(
        cls,
        llm: LlmSettings | None,
        *,
        operator_agent: bool,
        secrets: Mapping[str, str],
        env: Mapping[str, str],
        url_allowlist: Sequence[str] = (),
        resolver: Resolver | None = None,
    ) -> LlmAccess:
        """The key a spec's `llm` section names: a tenant secret (from `secrets`), or for an
        operator agent only, an environment variable (from `env`). `secrets` (those the spec
        names) are kept for its MCP servers' headers."""
        key = ""
        if llm is not None and llm.api_key_secret:
            key = secrets.get(llm.api_key_secret, "")
        elif llm is not None and llm.api_key_env and operator_agent:
            key = env.get(llm.api_key_env, "")
        return cls(
            api_key=key,
            operator_agent=operator_agent,
            url_allowlist=tuple(url_allowlist),
            resolver=resolver,
            secrets=dict(secrets),
        )

    def open_client(self, settings: LlmSettings, timeout_s: float) -> openai.AsyncOpenAI:
        """An OpenAI client for `settings.base_url` (retries off; the caller closes it)."""
        http_client = None
        if not self.operator_agent:
            http_client = pinned_client(self.url_allowlist, self.resolver, timeout_s=timeout_s)
        return openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=self.api_key or "not-needed",
            max_retries=0,
            timeout=timeout_s,
            http_client=http_client,
        )
