"""SSRF guard for URLs that tenant-configured tools, webhooks and LLM endpoints fetch.

`check_url` refuses anything but http(s) URLs whose host resolves only to public addresses,
unless the host name or the resolved address is in the allowlist (host names, IPs or CIDRs).
`fetch` is how tool calls make the request: the URL is checked first and redirects are never
followed (a redirect could point anywhere, including the cloud metadata address).

DNS rebinding (a name that answers a public address to the check and a private one to the
connect) is closed by `PinnedTransport`: its connections resolve the host once, check every
address, and connect to exactly the addresses that passed (TLS SNI, the certificate name and
the `Host` header stay the URL's host name). Every outbound client for tenant URLs uses it
(`guarded_client`). Resolution goes through the `Resolver` seam (`SystemResolver` by default).

Error texts never carry a resolved address (no oracle for the node's internal DNS).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

from core.errors import Refused

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

DEFAULT_MAX_BYTES = 16_384
"""How much of a response body `fetch` reads (the rest is dropped, `truncated` is set)."""


class UnsafeUrlError(Refused, ValueError):
    """The URL is not http(s), has no host, or reaches a non-public address."""


class Resolver(Protocol):
    """Host name -> addresses (the DNS seam; tests inject a rebinding one)."""

    async def resolve(self, host: str, port: int) -> list[IpAddress]: ...


class SystemResolver:
    """The event loop's `getaddrinfo`."""

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrlError(f"host {host!r} does not resolve") from exc
        out: list[IpAddress] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            raw = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 scope id
            try:
                addr = ipaddress.ip_address(raw)
            except ValueError as exc:
                raise UnsafeUrlError(f"host {host!r} resolved to an unusable address") from exc
            if addr not in out:
                out.append(addr)
        return out


SYSTEM_RESOLVER = SystemResolver()


def is_public_address(addr: IpAddress) -> bool:
    """True when `addr` is a globally routable unicast address (IPv4 embedded in IPv6 too)."""
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF)
        if embedded is None and addr.teredo is not None:
            embedded = addr.teredo[1]
        if embedded is not None and not is_public_address(embedded):
            return False
        if addr.ipv4_mapped is not None:
            return True  # judged by the IPv4 address it carries
    if (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_unspecified
        or addr.is_reserved
        or not addr.is_global
    ):
        return False
    return not (isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED_ADDRESS_SPACE)


def _parse_allowlist(allowlist: Sequence[str]) -> tuple[set[str], list[IpNetwork]]:
    hosts: set[str] = set()
    networks: list[IpNetwork] = []
    for entry in allowlist:
        item = entry.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            hosts.add(_normalise_host(item))
    return hosts, networks


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _in_networks(addr: IpAddress, networks: Sequence[IpNetwork]) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        if _in_networks(addr.ipv4_mapped, networks):
            return True
    return any(addr.version == net.version and addr in net for net in networks)


async def checked_addresses(
    host: str, port: int, allowlist: Sequence[str] = (), resolver: Resolver | None = None
) -> list[IpAddress] | None:
    """The addresses a connection to `host` may use: every one `host` resolves to, each public
    or allow-listed (else `UnsafeUrlError`). None when the host name itself is allow-listed (the
    operator trusts whatever it resolves to)."""
    host = _normalise_host(host)
    allowed_hosts, allowed_networks = _parse_allowlist(allowlist)
    if host in allowed_hosts:
        return None
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [literal] if literal is not None else None
    if addresses is None:
        addresses = await (resolver or SYSTEM_RESOLVER).resolve(host, port)
    if not addresses:
        raise UnsafeUrlError(f"host {host!r} does not resolve")
    for addr in addresses:
        if not _in_networks(addr, allowed_networks) and not is_public_address(addr):
            raise UnsafeUrlError(f"host {host!r} resolves to a non-public address")
    return addresses


async def check_url(
    url: str, allowlist: Sequence[str] = (), resolver: Resolver | None = None
) -> None:
    """Raise `UnsafeUrlError` unless `url` is http(s) and every address its host resolves to is
    public or allow-listed (or the host name itself is allow-listed)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError("malformed URL") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrlError(f"scheme {parts.scheme!r} is not allowed (http or https only)")
    if not host:
        raise UnsafeUrlError("URL has no host")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    await checked_addresses(host, port, allowlist, resolver)


async def pinned_connect(
    inner: Any,
    connect_errors: tuple[type[Exception], ...],
    host: str,
    port: int,
    *,
    allowlist: Sequence[str],
    resolver: Resolver | None,
    timeout: float | None,  # noqa: ASYNC109 (passed on to httpcore)
    local_address: str | None,
    socket_options: Iterable[Any] | None,
) -> Any:
    """Resolve `host` once, check every address, then connect `inner` (an httpcore network
    backend) to those addresses in turn — never to the name. Raises `UnsafeUrlError`, or the
    last connect error (whose text names the host, not the address)."""
    async with asyncio.timeout(timeout):
        addresses = await checked_addresses(host, port, allowlist, resolver)
    targets = [host] if addresses is None else [str(a) for a in addresses]
    failure: Exception | None = None
    for target in targets:
        try:
            return await inner.connect_tcp(target, port, timeout, local_address, socket_options)
        except connect_errors as exc:
            failure = exc
    assert failure is not None
    raise type(failure)(f"cannot connect to {host!r}") from failure


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked addresses (`pinned_connect`)."""

    def __init__(self, allowlist: Sequence[str], resolver: Resolver | None) -> None:
        self._allowlist = tuple(allowlist)
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream: httpcore.AsyncNetworkStream = await pinned_connect(
            self._inner,
            (httpcore.ConnectError, httpcore.ConnectTimeout),
            host,
            port,
            allowlist=self._allowlist,
            resolver=self._resolver,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrlError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose connections go only to addresses the guard checked at connect
    time (see the module docstring). No proxies from the environment, no unix sockets."""

    def __init__(
        self,
        allowlist: Sequence[str] = (),
        *,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(allowlist, resolver),
        )


def guarded_client(
    allowlist: Sequence[str] = (),
    *,
    resolver: Resolver | None = None,
    timeout_s: float = 10.0,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for tenant URLs: pinned, checked connections, no redirects, no
    environment proxies."""
    return httpx.AsyncClient(
        transport=PinnedTransport(allowlist, resolver=resolver, verify=verify),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class FetchedResponse:
    status_code: int
    text: str
    """The body, decoded leniently, at most `max_bytes` of it."""
    truncated: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


async def fetch(
    client: httpx.AsyncClient,
    method: Literal["GET", "POST"],
    url: str,
    *,
    allowlist: Sequence[str] = (),
    resolver: Resolver | None = None,
    params: Mapping[str, str] | None = None,
    json: Any = None,
    timeout_s: float = 5.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FetchedResponse:
    """Check `url`, then make one request without following redirects and read at most
    `max_bytes` of the body. Raises `UnsafeUrlError` or `httpx.HTTPError`. With a
    `guarded_client` the connection itself is checked again and pinned."""
    await check_url(url, allowlist, resolver)
    body = bytearray()
    truncated = False
    async with client.stream(
        method,
        url,
        params=params,
        json=json,
        timeout=timeout_s,
        follow_redirects=False,
    ) as response:
        async for chunk in response.aiter_bytes():
            room = max_bytes - len(body)
            if len(chunk) > room:
                body.extend(chunk[:room])
                truncated = True
                break
            body.extend(chunk)
        encoding = response.encoding or "utf-8"
        status = response.status_code
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return FetchedResponse(status_code=status, text=text, truncated=truncated)
